"""``solve(plan)``: the in-process ADMM loop over :class:`LocalWorker`s and one :class:`Coordinator`.

Each iteration: every worker does its x-update for the broadcast centres and rho (fast-path
workers all at once through :class:`FastBatch`), reports a :class:`LocalReport` (with its answer
to the broadcast's certificate query, if any), and the coordinator runs the z/y/u updates,
residuals, stopping test, rho adaptation and certificate checks (``coordinator.py``,
``certificate.py``). The distributed runtimes drive the same coordinator through the delta-sync
protocol, so a plan gets the same status, at the same iteration, in every runtime.

Statuses (never a guess):

* ``optimal``: the stopping test passed; the reported point is glued along consensus links.
* ``infeasible``: a local x-update (or a shared block's z-update) was declared infeasible by its
  solver -- the message names the object -- or a Farkas certificate built from the dual
  increments was verified with every object's support value (consensus and couplings alike).
* ``unbounded``: a local (or shared) prox problem is unbounded below, or a recession direction
  built from the iterate increments was verified from a feasible point.
* ``max_iterations``: nothing proven within ``max_iter``; the message gives the residuals against
  their tolerances and a hint, and the last iterate is returned.
* ``local_solver_failed``: a local solver failed or returned a non-finite value; the message
  names the object.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from catopt_dsl.ir.analysis import analyze_ir
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver.coordinator import Coordinator, Iterate, Round
from catopt_dsl.solver.glue import glue_stacked, stacked_values
from catopt_dsl.solver.layout import Layout, build_layout
from catopt_dsl.solver.local import Accuracy
from catopt_dsl.solver.result import (
    SolveOptions,
    SolveResult,
    SolverState,
    heuristic_message,
    inaccurate_warnings,
)
from catopt_dsl.solver.worker import FastBatch, LocalWorker, local_solver_summary, make_workers

__all__ = ["solve", "build_workers"]

ProgressFn = Callable[[dict[str, float]], None]


def build_workers(layout: Layout, options: SolveOptions) -> list[LocalWorker]:
    """One :class:`LocalWorker` per object, in plan order (members of one structure batched)."""
    analysis = analyze_ir(layout.plan)
    return make_workers(
        [(o.obj, o.M, o.e, analysis.object(o.obj.name)) for o in layout.objects],
        fast_path=options.fast_path,
        accuracy=Accuracy(options.eps_abs, options.eps_rel),
    )


def stacked_x(layout: Layout, x: np.ndarray) -> dict[str, np.ndarray]:
    """Object name -> its stacked x, as views into ``x`` (the stacked x of all objects)."""
    out: dict[str, np.ndarray] = {}
    objects = layout.objects
    for run in layout.member_runs:
        k = run.stop - run.start
        if k > 1:  # a family's members: row j of the run's range is member j's x (a view)
            names = [o.obj.name for o in objects[run.start : run.stop]]
            out.update(zip(names, x[run.x_start : run.x_start + k * run.n].reshape(k, run.n)))
        else:
            for i in range(run.start, run.stop):
                out[objects[i].obj.name] = x[layout.x_slices[i]]
    return out


def _shared_values(plan: IRPlan, z: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    names = set(plan.colimit.shared) if plan.colimit is not None else {b.name for b in plan.shared}
    shared: dict[str, dict[str, np.ndarray]] = {}
    for blk in plan.shared:
        if blk.name not in names:
            continue
        shared[blk.name] = {
            v.name: z[blk.name][v.offset : v.offset + v.size].reshape(v.shape).copy() for v in blk.vars
        }
    return shared


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
    rows = {o.obj.name: (o.rows, layout.x_slices[i], i) for i, o in enumerate(layout.objects)}
    batch = FastBatch(workers, rows)
    slow = [(i, w) for i, w in enumerate(workers) if not w.fast]
    heuristic = [o.name for o in plan.objects if o.external is not None and not o.external.convex]
    coordinator = Coordinator(layout, opts, warm_start)
    bc: Iterate = coordinator.first_iterate()
    history: list[dict[str, float]] = []
    iterations = 0

    def finish(status: str, message: str, objective: float | None) -> SolveResult:
        # every x is in x_all (the last report wrote it); the values are views of one copy of it
        x_now = x_all.copy() if iterations else np.concatenate([w.x for w in workers] or [np.zeros(0)])
        shared = _shared_values(plan, coordinator.z)
        if objective is None:
            objects = stacked_values(layout, x_now)
        else:
            z_all = {
                blk.name: {
                    v.name: coordinator.z[blk.name][v.offset : v.offset + v.size].reshape(v.shape)
                    for v in blk.vars
                }
                for blk in plan.shared
            }
            evaluators = {w.name: w.objective_value for w in workers if w.obj.external is not None}
            objects, objective = glue_stacked(layout, x_now, z_all, [w.analysis for w in workers], evaluators)
        if status == "optimal" and heuristic:
            # converged, but on a loss no one vouches is convex: a stationary point, not a proven optimum
            status, message = "stationary", heuristic_message(heuristic)
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
            # the state's x: views of one more copy (the reported objects are views of x_now)
            state=coordinator.state(stacked_x(layout, x_now.copy()), copy=False),
            prices=coordinator.prices() if status == "optimal" else {},
            # (an optimal run has none: its residuals verified the point; no per-object counts then)
            warnings=[]
            if status == "optimal"
            else inaccurate_warnings(
                status,
                {**{w.name: w.inaccurate for w in workers}, **{n: p.inaccurate for n, p in coordinator.proxes.items()}},
                iterations,
            ),
            local_solvers=local_solver_summary(workers),
        )

    a = np.zeros(layout.total_rows)
    x_all = np.zeros(layout.total_n)
    f = np.zeros(len(workers))
    order: dict[str, int] = {}  # object name -> position, built when a failure needs sorting
    for k in range(1, opts.max_iter + 1):
        iterations = k
        batch.step_flat(bc.d, bc.rho)
        for i, w in slow:
            w.step(bc.d[layout.objects[i].rows], bc.rho)
        grad = batch.report_flat(a, x_all, f)
        failures = []
        unbounded = []
        answers = {}
        for i, w in slow:
            c = w.contribution(w.answer(bc.queries.get(w.name)))
            o = layout.objects[i]
            a[o.rows] = c.a
            x_all[layout.x_slices[i]] = c.x if c.x is not None else 0.0
            f[i] = c.objective
            grad = max(grad, c.grad_scale)
            answers[w.name] = c.answer
        for w in batch.irregular():
            if w.status != "ok":
                failures.append((w.name, w.status, w.message))
            if w.unbounded:
                unbounded.append(w.unbounded)
        for _i, w in slow:
            if w.status != "ok":
                failures.append((w.name, w.status, w.message))
            if w.unbounded:
                unbounded.append(w.unbounded)
        if bc.queries:
            for w in workers:
                if w.fast and w.name in bc.queries:
                    answers[w.name] = w.answer(bc.queries[w.name])
        if failures:
            if not order:
                order = {w.name: i for i, w in enumerate(workers)}
            failures.sort(key=lambda item: order[item[0]])
        bc = coordinator.update_round(Round(a, f, grad, x_all, tuple(failures), answers, tuple(unbounded)))
        if bc.status is not None:
            return finish(bc.status, bc.message, None)
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
    return finish("max_iterations", coordinator.no_convergence_message(opts.max_iter), bc.objective if coordinator.last is not None else None)
