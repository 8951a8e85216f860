"""Solver benchmark: wall time to a relative objective gap of 1e-4, catoptc against centralised CVXPY.

Problems (``benchmarks/specgen_solver.py``, compiled by the real front end):

* consensus lasso, each site 50 x 20, N = 8, 64, 512 sites (quadratic locals: fast path);
* the GPU-fleet sharing problem with 10, 100, 1,000 tenants (box constraints: CVXPY local solves).

``--quick``: N = 8 and 10 tenants only, with short budgets.

Method (the same for every ADMM variant):

1. A tight centralised reference f* (Clarabel with gap and feasibility tolerances 1e-10) for the
   same plan.
2. The solver runs with tight stopping tolerances (eps_abs 1e-9, eps_rel 1e-8) and a ``progress``
   callback that records the wall time since ``solve()`` was called (so layout, worker set-up and
   factorisations are included) and the objective of every iteration. The relative gap is
   ``|f_k - f*| / max(1, |f*|)``.
3. Time to gap = the time of the first iteration from which the gap *stays* <= 1e-4 (a crossing
   that later leaves the band does not count). The run is stopped once the gap has stayed in the
   band for ``HOLD`` consecutive iterations, when the solver stops by itself, or when the run's
   wall budget is spent (then: "not reached").

The centralised CVXPY solves are timed from building the CVXPY expressions to the end of
``problem.solve`` (canonicalisation included), with CVXPY's default solver and with Clarabel
(default tolerances), in the same process; their own gap to f* is reported beside the time.

``run(quick) -> dict`` returns ``{"tables", "targets", "notes", "cases"}`` for the harness.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np

from benchmarks.harness import fmt_num, fmt_stats, summarize
from benchmarks.specgen_solver import fleet_plan, lasso_plan
from catopt_dsl.ir.model import IRConstraint, IRPlan
from catopt_dsl.solver import SolveOptions, SolveResult, build_layout, build_workers, solve
from catopt_dsl.solver.cvx import stacked_views, to_cvxpy

GAP = 1e-4
HOLD = 10  # consecutive in-band iterations that end a run early
EPS_ABS, EPS_REL = 1e-9, 1e-8  # tight: the run is ended by the gap rule, not by the stopping test
NATIVE_SKIP = "not available: the native backends are orchestration stubs with user-supplied local solvers"


# ---------------------------------------------------------------------------------------------
# Centralised CVXPY problem (the same construction as catopt_dsl.solver.centralized, but the
# benchmark needs the cp.Problem itself to choose the solver and its tolerances).
# ---------------------------------------------------------------------------------------------


def _con(con: IRConstraint, views: dict[str, Any], params: dict[str, np.ndarray]) -> cp.Constraint:
    lhs = to_cvxpy(con.lhs, views, params)
    rhs = to_cvxpy(con.rhs, views, params)
    if not isinstance(lhs, cp.Expression):
        lhs = cp.Constant(np.asarray(lhs, dtype=np.float64))
    return lhs <= rhs if con.op == "<=" else lhs >= rhs if con.op == ">=" else lhs == rhs


def _expr(value: Any) -> cp.Expression:
    return value if isinstance(value, cp.Expression) else cp.Constant(np.asarray(value, dtype=np.float64))


def central_problem(plan: IRPlan) -> cp.Problem:
    """The whole plan as one CVXPY problem (objectives summed, links and couplings as constraints)."""
    xs: dict[str, cp.Variable] = {}
    zs: dict[str, cp.Variable] = {}
    terms: list[cp.Expression] = []
    cons: list[cp.Constraint] = []
    for obj in plan.objects:
        x = cp.Variable(max(obj.n, 1))
        xs[obj.name] = x
        views = stacked_views(x, obj.vars)
        params = {p.name: np.asarray(p.value, dtype=np.float64) for p in obj.params}
        terms.append(_expr(to_cvxpy(obj.objective, views, params)))
        cons.extend(_con(c, views, params) for c in obj.constraints)
    for blk in plan.shared:
        z = cp.Variable(max(blk.n, 1))
        zs[blk.name] = z
        views = stacked_views(z, blk.vars)
        params = {p.name: np.asarray(p.value, dtype=np.float64) for p in blk.params}
        if blk.objective is not None:
            terms.append(_expr(to_cvxpy(blk.objective, views, params)))
        cons.extend(_con(c, views, params) for c in blk.constraints)
    for link in plan.consensus:
        ov = plan.object(link.object).var(link.var)
        sv = plan.shared_block(link.shared).var(link.shared_var)
        cons.append(xs[link.object][ov.offset : ov.offset + ov.size] == zs[link.shared][sv.offset : sv.offset + sv.size])
    for coupling in plan.couplings:
        rhs = np.asarray(coupling.rhs, dtype=np.float64).reshape(-1)
        total: cp.Expression | None = None
        for term in coupling.terms:
            n = plan.object(term.object).n
            B = np.asarray(term.B, dtype=np.float64).reshape(-1, n)
            piece = B @ xs[term.object][:n] + np.asarray(term.b, dtype=np.float64).reshape(-1)
            total = piece if total is None else total + piece
        if total is None:
            continue
        cons.append(total <= rhs if coupling.sense == "<=" else total >= rhs if coupling.sense == ">=" else total == rhs)
    return cp.Problem(cp.Minimize(cp.sum(cp.hstack([cp.reshape(t, (1,), order="C") for t in terms]))), cons)


def reference_objective(plan: IRPlan) -> float:
    """f* from Clarabel with tight tolerances (falls back to CVXPY's default solver)."""
    problem = central_problem(plan)
    try:
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10, max_iter=500)
    except (cp.SolverError, TypeError):
        problem.solve()
    if problem.value is None or not math.isfinite(problem.value):
        raise RuntimeError(f"the centralised reference failed: {problem.status}")
    return float(problem.value)


def time_central(plan: IRPlan, solver: str | None, ref: float) -> dict[str, Any]:
    """One timed centralised solve: build + canonicalise + solve."""
    t0 = time.perf_counter()
    problem = central_problem(plan)
    try:
        if solver is None:
            problem.solve()
        else:
            problem.solve(solver=solver)
        status = str(problem.status)
    except cp.SolverError as exc:
        status = f"solver_error ({exc})"
    elapsed = time.perf_counter() - t0
    value = problem.value if problem.value is not None and math.isfinite(problem.value) else None
    stats = getattr(problem, "solver_stats", None)
    return {
        "time_s": elapsed,
        "status": status,
        "objective": value,
        "gap": None if value is None else abs(value - ref) / max(1.0, abs(ref)),
        "solver": getattr(stats, "solver_name", None) or (solver or "default"),
    }


# ---------------------------------------------------------------------------------------------
# Time to gap for ADMM runs
# ---------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Raised from the progress callback to end a run (band held long enough, or budget spent)."""


def time_to_gap(
    run: Callable[[Callable[[dict[str, float]], None]], SolveResult],
    ref: float,
    budget_s: float,
    gap: float = GAP,
    hold: int = HOLD,
) -> dict[str, Any]:
    """Run ``run(progress)`` and find when the objective gap entered the band for good (see module doc)."""
    trace: list[tuple[float, float, float, float]] = []  # (time, iteration, gap, r_prim)
    entered: list[int] = []  # index in trace where the current in-band stretch began
    t0 = time.perf_counter()

    def progress(row: dict[str, float]) -> None:
        now = time.perf_counter() - t0
        g = abs(row["objective"] - ref) / max(1.0, abs(ref)) if math.isfinite(row["objective"]) else math.inf
        trace.append((now, row["iteration"], g, row["r_prim"]))
        if g <= gap:
            if not entered:
                entered.append(len(trace) - 1)
            if len(trace) - entered[0] >= hold:
                raise _Stop
        else:
            entered.clear()
        if now > budget_s:
            raise _Stop

    status = "stopped"
    try:
        result = run(progress)
        status = result.status
    except _Stop:
        pass
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {
        "reached": bool(entered),
        "time_s": None,
        "iteration": None,
        "r_prim": None,
        "iterations_run": len(trace),
        "final_gap": trace[-1][2] if trace else None,
        "wall_s": wall,
        "status": status,
        "setup_s": trace[0][0] if trace else None,
    }
    if entered:
        t, it, _, r = trace[entered[0]]
        out.update(time_s=t, iteration=int(it), r_prim=r)
    return out


def _admm(plan: IRPlan, fast_path: bool) -> Callable[[Callable[[dict[str, float]], None]], SolveResult]:
    options = SolveOptions(max_iter=20000, fast_path=fast_path, eps_abs=EPS_ABS, eps_rel=EPS_REL)
    return lambda progress: solve(plan, options, progress=progress)


RAY_MAX_IN_PROCESS_S = 60.0  # skip Ray where in-process already needs longer (keeps the run < 30 min)


def time_on_ray(plan: IRPlan, iterations: int, ref: float) -> dict[str, Any]:
    """Wall time of ``solve_on_ray`` for the iterations the in-process solver needed to reach the gap.

    ``solve_on_ray`` takes no progress callback, but it runs the same iterates as the in-process
    solver for the same options, so it is run for exactly that many iterations and its final
    objective is checked against f*. Call it inside a Ray session; the plan's actors are created by
    a one-iteration run before the timed run (that start-up is reported separately).
    """
    from catopt_dsl.runtime.ray_backend import solve_on_ray

    t0 = time.perf_counter()
    solve_on_ray(plan, SolveOptions(max_iter=1, eps_abs=EPS_ABS, eps_rel=EPS_REL))  # creates this plan's actors
    startup = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = solve_on_ray(plan, SolveOptions(max_iter=iterations, eps_abs=EPS_ABS, eps_rel=EPS_REL))
    elapsed = time.perf_counter() - t1
    gap = None if result.objective is None else abs(result.objective - ref) / max(1.0, abs(ref))
    return {"time_s": elapsed, "reached": gap is not None and gap <= GAP, "iteration": result.iterations,
            "final_gap": gap, "startup_s": startup, "iterations_run": result.iterations, "wall_s": elapsed,
            "r_prim": result.primal_residual, "setup_s": None, "status": result.status}


def _fast_eligible(plan: IRPlan) -> tuple[int, int]:
    """(objects on the closed-form fast path, all objects) under the default options."""
    workers = build_workers(build_layout(plan), SolveOptions())
    return sum(1 for w in workers if w.fast), len(workers)


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def _cases(quick: bool) -> list[tuple[str, int, float]]:
    """(problem, size, wall budget per CVXPY-path ADMM run in seconds)."""
    if quick:
        return [("lasso", 8, 20.0), ("fleet", 10, 20.0)]
    return [("lasso", 8, 120.0), ("lasso", 64, 240.0), ("lasso", 512, 300.0),
            ("fleet", 10, 120.0), ("fleet", 100, 240.0), ("fleet", 1000, 300.0)]


def _repeats(first_s: float, quick: bool) -> int:
    """Extra repeats for cheap runs: medians where they cost little, one run where they would not."""
    if quick:
        return 1 if first_s < 2.0 else 0
    return 4 if first_s < 2.0 else 2 if first_s < 10.0 else 0


def _measure_case(problem: str, n: int, budget: float, quick: bool, work: Path) -> dict[str, Any]:
    folder = work / f"{problem}_{n}"
    plan = lasso_plan(folder, n) if problem == "lasso" else fleet_plan(folder, n)
    ref = reference_objective(plan)
    fast_objects, objects = _fast_eligible(plan)
    case: dict[str, Any] = {"problem": problem, "n": n, "reference": ref, "fast_objects": fast_objects,
                            "objects": objects, "methods": {}}
    methods: dict[str, Any] = case["methods"]

    def repeated(fn: Callable[[], dict[str, Any]]) -> list[dict[str, Any]]:
        first = fn()
        key = "time_s" if first.get("time_s") is not None else "wall_s"
        return [first] + [fn() for _ in range(_repeats(first.get(key) or math.inf, quick))]

    if fast_objects:
        methods["fast"] = repeated(lambda: time_to_gap(_admm(plan, True), ref, budget))
    else:
        methods["fast"] = {"skipped": f"fast path not applicable: none of the {objects} objects is eligible "
                                      "(inequality constraints); the default solve is the CVXPY path below"}
    methods["cvxpy_path"] = repeated(lambda: time_to_gap(_admm(plan, False), ref, budget))
    methods["native"] = {"skipped": NATIVE_SKIP}
    methods["ray"] = {"skipped": "pending"}  # filled in by _ray_pass, in one Ray session for all cases
    case["_plan"] = plan
    methods["central_default"] = repeated(lambda: time_central(plan, None, ref))
    methods["central_clarabel"] = repeated(lambda: time_central(plan, cp.CLARABEL, ref))
    return case


def _ray_pass(cases: list[dict[str, Any]], quick: bool) -> None:
    """Time every case on Ray inside one session (a local Ray takes 10-60 s to start here)."""
    try:
        from catopt_dsl.runtime.ray_backend import ray_session
    except ImportError as exc:
        for case in cases:
            case["methods"]["ray"] = {"skipped": f"not available: catopt_dsl.runtime.ray_backend missing ({exc})"}
        return
    todo = []
    for case in cases:
        m = case["methods"]
        hits = [s for key in ("fast", "cvxpy_path") if isinstance(m[key], list) for s in m[key] if s.get("reached")]
        if quick:
            m["ray"] = {"skipped": "not run with --quick (a local Ray alone takes 10-60 s to start)"}
        elif not hits:
            m["ray"] = {"skipped": "not run: the in-process solver did not reach the gap"}
        elif min(s["time_s"] for s in hits) > RAY_MAX_IN_PROCESS_S:
            m["ray"] = {"skipped": f"not run: in-process needs > {RAY_MAX_IN_PROCESS_S:.0f} s here "
                                   "(keeps the full run under 30 minutes)"}
        else:
            todo.append((case, int(hits[0]["iteration"])))
    if not todo:
        return
    try:
        t0 = time.perf_counter()
        with ray_session():
            session_s = time.perf_counter() - t0
            for case, iterations in todo:
                try:
                    sample = time_on_ray(case["_plan"], iterations, case["reference"])
                    sample["session_start_s"] = session_s
                    case["methods"]["ray"] = [sample]
                except Exception as exc:  # report a broken runtime instead of losing the benchmark
                    case["methods"]["ray"] = {"skipped": f"failed: {type(exc).__name__}: {exc}"}
    except Exception as exc:
        for case, _ in todo:
            case["methods"]["ray"] = {"skipped": f"failed to start Ray: {type(exc).__name__}: {exc}"}


def run(quick: bool = False) -> dict[str, Any]:
    """Run every case and return tables, targets and the raw samples (see the module docstring)."""
    work = Path(tempfile.mkdtemp(prefix="catopt-bench-solver-"))
    cases = []
    try:
        for problem, n, budget in _cases(quick):
            cases.append(_measure_case(problem, n, budget, quick, work))
        _ray_pass(cases, quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for case in cases:
            case.pop("_plan", None)  # IR is not JSON
    return _summarise(cases, quick)


LABELS = {
    "fast": "catoptc in-process, fast path",
    "cvxpy_path": "catoptc in-process, CVXPY path (fast_path=False)",
    "native": "catoptc native",
    "ray": "catoptc on Ray",
    "central_default": "CVXPY centralised, default solver",
    "central_clarabel": "CVXPY centralised, Clarabel",
}


def _median_time(samples: Any) -> float | None:
    if not isinstance(samples, list):
        return None
    times = [s["time_s"] for s in samples if s.get("time_s") is not None and s.get("reached", True)]
    if len(times) < len(samples):
        return None  # a run that did not reach the gap has no time to gap
    return summarize(times)["median"]


def _row(name: str, samples: Any, fast_time: float | None, central_time: float | None) -> list[str]:
    if isinstance(samples, dict):
        return [LABELS[name], samples["skipped"], "-", "-", "-", "-"]
    central = name.startswith("central")
    reached = [s for s in samples if s.get("reached", True) and s.get("time_s") is not None]
    if not reached:
        s = samples[0]
        what = (f"not reached in {s['wall_s']:.0f} s ({s['iterations_run']} iterations, final gap "
                f"{fmt_num(s['final_gap'])})")
        return [LABELS[name], what, "-", "-", "-", "-"]
    stats = summarize(s["time_s"] for s in reached)
    if central:
        s = samples[0]
        detail = f"{s['solver']} {s['status']}, own gap {fmt_num(s['gap'])}" + (
            " (> 1e-4: default tolerances too loose)" if s["gap"] is not None and s["gap"] > GAP else "")
    elif name == "ray":
        s = reached[0]
        detail = (f"{s['iteration']} iterations (the in-process count), final gap {fmt_num(s['final_gap'])}; "
                  f"not included: Ray start {fmt_num(s['session_start_s'])} s, actors {fmt_num(s['startup_s'])} s")
    else:
        s = reached[0]
        detail = f"iteration {s['iteration']}, r_prim {fmt_num(s['r_prim'])}, set-up {fmt_num(s['setup_s'])} s"
    med = stats["median"]
    vs_central = fmt_num(central_time / med) if central_time and med else "-"
    vs_fast = fmt_num(med / fast_time) if fast_time and med else "-"
    return [LABELS[name], fmt_stats(stats), detail, f"{len(samples)}", vs_central, vs_fast]


def _summarise(cases: list[dict[str, Any]], quick: bool) -> dict[str, Any]:
    tables = []
    speedups: dict[tuple[str, int], float | None] = {}
    for case in cases:
        m = case["methods"]
        fast_time = _median_time(m["fast"])
        cvx_time = _median_time(m["cvxpy_path"])
        central_time = _median_time(m["central_default"])
        best_admm = fast_time if fast_time is not None else cvx_time
        speedups[(case["problem"], case["n"])] = (
            central_time / best_admm if central_time and best_admm else None)
        rows = [_row(name, m[name], best_admm, central_time) for name in LABELS]
        title = ("consensus lasso, " if case["problem"] == "lasso" else "GPU-fleet sharing, ") + (
            f"N = {case['n']:,} sites (50 x 20 each)" if case["problem"] == "lasso" else f"{case['n']:,} tenants")
        title += (f"; f* = {case['reference']:.10g}; {case['fast_objects']}/{case['objects']} objects on the "
                  "fast path")
        tables.append({
            "title": title,
            "columns": ["method", "time to gap 1e-4, s (median, min-max)", "detail", "runs",
                        "speed-up vs CVXPY default (x)", "time / fastest catoptc (x)"],
            "rows": rows,
        })
    # A compact ratio table: the numbers the targets are about.
    ratio_rows = [
        [p, f"{n:,}", fmt_num(s) if s is not None else "-"] for (p, n), s in speedups.items()
    ]
    tables.append({
        "title": "CVXPY centralised (default solver) time / fastest catoptc in-process time, same run",
        "columns": ["problem", "size", "ratio (x)"],
        "rows": ratio_rows,
    })
    targets = []
    lasso = {n: s for (p, n), s in speedups.items() if p == "lasso"}
    key_n = 64 if 64 in lasso else max(lasso) if lasso else None
    if key_n is not None:
        s = lasso[key_n]
        targets.append({
            "name": f"fast path reaches 1e-4 >= 5x sooner than CVXPY centralised (lasso N = {key_n})"
                    + (" [quick: N = 64 not run]" if key_n != 64 else ""),
            "required": ">= 5x",
            "measured": "-" if s is None else f"{s:.2f}x",
            "met": None if s is None or key_n != 64 else s >= 5.0,
            "reason": "" if s is not None and s >= 5.0 else (
                "no time to gap measured" if s is None else
                "quick run: the target is about N = 64" if key_n != 64 else
                "per-object set-up (layout, CVXPY models built for every worker, factorisations) dominates at "
                "this size"),
        })
    sizes = sorted(lasso)
    seq = [v for v in (lasso[n] for n in sizes) if v is not None]
    if len(sizes) >= 2 and len(seq) == len(sizes):
        widening = all(b > a for a, b in zip(seq, seq[1:]))
        targets.append({
            "name": "the gap widens with N (lasso)",
            "required": "ratio increases with N",
            "measured": ", ".join(f"N={n}: {lasso[n]:.2f}x" for n in sizes),
            "met": widening,
            "reason": "" if widening else "the ratio does not grow monotonically with N",
        })
    notes = [
        "Time to gap: the solver runs with eps_abs 1e-9 / eps_rel 1e-8 and a progress callback that records "
        "wall time (from the call to `solve`, set-up included) and objective per iteration; the time reported "
        "is the first iteration from which |f_k - f*| / max(1, |f*|) stays <= 1e-4 (runs end after "
        f"{HOLD} in-band iterations, at the solver's own stop, or at the run's wall budget).",
        "f* is a centralised Clarabel solve with tolerances 1e-10. CVXPY centralised times include building "
        "the expressions and canonicalisation; 'own gap' is that solve's objective against f*.",
        "catoptc on Ray: `solve_on_ray` has no progress callback but runs the same iterates as the "
        "in-process solver, so it is timed for exactly the iterations the in-process run needed and its final "
        "objective is checked against f*; the Ray session and actors are started before the timed run.",
        "The ADMM iterate need not be primal feasible when its objective enters the band: r_prim at that "
        "iteration is shown.",
        f"catoptc native: {NATIVE_SKIP}.",
    ]
    return {"tables": tables, "targets": targets, "notes": notes, "cases": cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick), indent=2, default=str))


if __name__ == "__main__":
    main()
