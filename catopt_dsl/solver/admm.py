"""``solve(plan)``: the in-process ADMM loop over :class:`LocalWorker`s and one :class:`Coordinator`.

Each iteration: every worker does its x-update for the broadcast centres and rho (fast-path
workers all at once through :class:`FastBatch`), reports a :class:`Contribution`, and the
coordinator runs the z/y/u updates, residuals, stopping test and rho adaptation
(``coordinator.py`` documents the exact formulas).

Statuses (never a guess):

* ``optimal``: the stopping test passed.
* ``infeasible``: a local x-update (or a shared block's z-update) was declared infeasible by
  CVXPY -- the message names the object and the CVXPY status -- or a coupling has a verified
  certificate: its dual increments ``delta(rho u)`` settled on a constant nonzero direction
  lambda (Banjac et al. 2019) *and* the workers' support values prove it:
  ``sum_i min_{x in C_i} lambda'(sum_t B_t x + b_t) > lambda' rhs`` (with lambda in the sense's
  dual cone), which no feasible point can satisfy. Consensus links are ignored when computing the
  minimum, which only weakens the left side, so the certificate stays sound.
* ``unbounded``: a local (or shared) prox problem is unbounded below per CVXPY.
* ``max_iterations``: no decision within ``max_iter`` (the returned point is the last iterate).
* ``local_solver_failed``: CVXPY failed on an object; the message names it and the status.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from catopt_dsl.solver.glue import glue_solution

from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver.coordinator import Broadcast, Coordinator
from catopt_dsl.solver.layout import Layout, build_layout
from catopt_dsl.solver.result import SolveOptions, SolveResult, SolverState
from catopt_dsl.solver.shared import ProxFailure
from catopt_dsl.solver.worker import Contribution, FastBatch, LocalWorker

__all__ = ["solve", "build_workers", "verify_coupling_certificate"]

ProgressFn = Callable[[dict[str, float]], None]


def build_workers(layout: Layout, options: SolveOptions) -> list[LocalWorker]:
    """One :class:`LocalWorker` per object, in plan order."""
    return [LocalWorker(o.obj, o.M, o.e, fast_path=options.fast_path) for o in layout.objects]


def verify_coupling_certificate(
    layout: Layout, workers: list[LocalWorker], coupling: str, lam: np.ndarray
) -> tuple[bool, str]:
    """Check ``sum_i min_{x in C_i} lam'(sum_t B_t x + b_t) > lam' rhs`` with the workers."""
    spec = next(c for c in layout.couplings if c.name == coupling)
    by_name = {w.name: w for w in workers}
    total = 0.0
    for o in layout.objects:
        c_local = np.zeros(o.M.shape[0])
        for block in o.blocks:
            if block.coupling == coupling:
                c_local[block.local] = lam
        if not np.any(c_local):
            continue
        value = by_name[o.obj.name].support(c_local)
        if not np.isfinite(value):
            return False, ""
        total += value
    bound = float(lam @ spec.rhs)
    gap = total - bound
    if gap > 1e-6 * max(1.0, abs(total), abs(bound)):
        return True, (
            f"coupling `{coupling}` is infeasible: certificate lambda = {np.round(lam, 6).tolist()} gives "
            f"min over the local constraint sets of lambda'(sum of terms) = {total:.6g} > lambda'rhs = {bound:.6g}"
        )
    return False, ""


def _values(
    layout: Layout, workers: list[LocalWorker], z: dict[str, np.ndarray]
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, np.ndarray]]]:
    objects: dict[str, dict[str, np.ndarray]] = {}
    for w in workers:
        objects[w.name] = {
            v.name: w.x[v.offset : v.offset + v.size].reshape(v.shape).copy() for v in w.obj.vars
        }
    plan = layout.plan
    names = set(plan.colimit.shared) if plan.colimit is not None else {b.name for b in plan.shared}
    shared: dict[str, dict[str, np.ndarray]] = {}
    for blk in plan.shared:
        if blk.name not in names:
            continue
        shared[blk.name] = {
            v.name: z[blk.name][v.offset : v.offset + v.size].reshape(v.shape).copy() for v in blk.vars
        }
    return objects, shared


def solve(
    plan: IRPlan,
    options: SolveOptions | None = None,
    *,
    warm_start: SolverState | None = None,
    progress: ProgressFn | None = None,
) -> SolveResult:
    """Solve the plan with consensus + sharing ADMM (see the module docstrings for the details)."""
    opts = options or SolveOptions()
    start = time.perf_counter()
    if progress is None and opts.verbose:
        from catopt_dsl.solver.progress import ProgressPrinter

        progress = ProgressPrinter()
    layout = build_layout(plan)
    workers = build_workers(layout, opts)
    if warm_start is not None:
        for w in workers:
            x = warm_start.x.get(w.name)
            if x is not None and np.asarray(x).shape == (w.n,):
                w.set_x(x)
    batch = FastBatch(workers)
    slow = [w for w in workers if not w.fast]
    coordinator = Coordinator(layout, opts, warm_start)
    bc: Broadcast = coordinator.initial_broadcast()
    history: list[dict[str, float]] = []
    status, message = "max_iterations", ""
    iterations = 0

    def finish(status: str, message: str, objective: float | None) -> SolveResult:
        objects, shared = _values(layout, workers, coordinator.z)
        if objective is not None:
            z_all = {
                blk.name: {
                    v.name: coordinator.z[blk.name][v.offset : v.offset + v.size].reshape(v.shape)
                    for v in blk.vars
                }
                for blk in plan.shared
            }
            objects, objective = glue_solution(plan, objects, z_all)
        last = coordinator.last
        return SolveResult(
            status=status,
            objective=objective,
            iterations=iterations,
            primal_residual=None if last is None else last.r_prim,
            dual_residual=None if last is None else last.r_dual,
            solve_time_s=time.perf_counter() - start,
            objects=objects,
            shared=shared,
            message=message,
            history=history,
            state=coordinator.state({w.name: w.x for w in workers}),
        )

    for k in range(1, opts.max_iter + 1):
        iterations = k
        batch.step_all(bc.centres, bc.rho)
        for w in slow:
            w.step(bc.centres[w.name], bc.rho)
        contributions: dict[str, Contribution] = {}
        for w in workers:
            c = w.contribution()
            if c.status != "ok":
                kind = {"infeasible": "infeasible", "unbounded": "unbounded"}.get(
                    c.status, "local_solver_failed"
                )
                return finish(kind, c.message, None)
            contributions[w.name] = c
        try:
            bc = coordinator.update(contributions)
        except ProxFailure as exc:
            return finish(exc.status, exc.message, None)
        row = {
            "iteration": float(k),
            "r_prim": bc.r_prim,
            "r_dual": bc.r_dual,
            "rho": bc.rho,
            "objective": bc.objective,
        }
        history.append(row)
        if progress is not None:
            progress(dict(row))
        if bc.converged:
            return finish("optimal", "", bc.objective)
        if opts.infeasibility_check_interval > 0 and k % opts.infeasibility_check_interval == 0:
            for name, lam in coordinator.infeasibility_candidates().items():
                ok, msg = verify_coupling_certificate(layout, workers, name, lam)
                if ok:
                    return finish("infeasible", msg, None)
    message = f"no convergence within {opts.max_iter} iterations"
    return finish("max_iterations", message, bc.objective if coordinator.last is not None else None)
