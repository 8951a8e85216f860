"""Ray runtime benchmark: per-round overhead with 8, 64 and 512 members, and the crossover.

Method: the consensus lasso (fast path, so a local solve costs microseconds) with N members is
solved on a local Ray (``catopt_dsl.runtime.ray_backend.solve_on_ray(plan, options)``) with the
stopping test switched off (eps 0) for K1 and then K2 rounds; the per-round time is
``(T(K2) - T(K1)) / (K2 - K1)``, which cancels start-up (``ray.init``, actor creation, first
factorisations). The same is done in-process with ``catopt_dsl.solver.solve``; the Ray overhead
per round is the difference. Each N runs in its own subprocess (clean Ray start and shutdown,
and a timeout so a runtime that hangs cannot stall the whole report).

Crossover (a model built on the measured numbers, stated as such in the report): with a local
solve of t seconds per member, a round costs ``c_in + N t`` in-process (members one after the
other) and ``c_in + o + ceil(N / P) t`` on Ray with P usable cores and o the measured overhead
per round; Ray wins when the second is smaller, i.e. for ``t > o / (N - ceil(N / P))``.

``run(quick) -> dict``: ``{"skipped": reason}`` while the Ray backend does not exist, else
``{"tables", "targets", "notes", "sizes"}``. ``--quick`` skips it (Ray start-up alone is 10-60 s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import fmt_num

ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S = 400
LOCAL_SOLVE_MS = (1.0, 10.0, 100.0)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _child(n: int, k1: int, k2: int) -> dict[str, Any]:
    """Measure in-process and Ray round times for N members (runs in its own process)."""
    from benchmarks.specgen_solver import lasso_plan
    from catopt_dsl.runtime.ray_backend import ray_session, solve_on_ray
    from catopt_dsl.solver import SolveOptions, solve

    work = Path(tempfile.mkdtemp(prefix="catopt-bench-ray-"))
    plan = lasso_plan(work, n)

    def timed(fn: Any, k: int) -> tuple[float, int | None]:
        # eps 0: the stopping test never passes, so exactly k rounds run.
        opts = SolveOptions(max_iter=k, eps_abs=0.0, eps_rel=0.0, adaptive_rho=False)
        t0 = time.perf_counter()
        result = fn(plan, opts)
        return time.perf_counter() - t0, result.iterations

    in1, _ = timed(solve, k1)
    in2, it_in = timed(solve, k2)
    # One Ray session for all runs: start-up (seconds, and very noisy on a loaded machine) would
    # otherwise swamp the per-round difference. The first run creates the actors.
    t0 = time.perf_counter()
    with ray_session():
        timed(solve_on_ray, 1)
        startup = time.perf_counter() - t0
        ray1, _ = timed(solve_on_ray, k1)
        ray2, it_ray = timed(solve_on_ray, k2)
    return {
        "n": n,
        "k1": k1,
        "k2": k2,
        "in_process_round_s": (in2 - in1) / (k2 - k1),
        "ray_round_s": (ray2 - ray1) / (k2 - k1),
        "ray_startup_s": startup,
        "ray_fixed_s": ray1 - k1 * (ray2 - ray1) / (k2 - k1),
        "iterations_in_process": it_in,
        "iterations_ray": it_ray,
    }


def _spawn(n: int, k1: int, k2: int) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cmd = [sys.executable, "-m", "benchmarks.bench_ray", "--child", str(n), str(k1), str(k2)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"n": n, "error": f"timed out after {CHILD_TIMEOUT_S} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
        return {"n": n, "error": f"exited {proc.returncode}: {' | '.join(tail)}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def crossover(n: int, overhead_s: float, in_round_s: float, cores: int) -> dict[str, Any]:
    """Model: which runtime is faster per round for each local-solve time, and the break-even time."""
    parallel = math.ceil(n / max(1, cores))
    saved_per_second = n - parallel  # local-solve seconds Ray saves per second of local solve
    breakeven = max(0.0, overhead_s) / saved_per_second if saved_per_second > 0 else math.inf
    winners = {}
    for ms in LOCAL_SOLVE_MS:
        t = ms / 1000
        in_process = n * t + in_round_s
        ray = overhead_s + in_round_s + parallel * t
        winners[f"{ms:g}"] = {"in_process_s": in_process, "ray_s": ray, "winner": "Ray" if ray < in_process else "in-process"}
    return {"breakeven_local_solve_s": breakeven, "per_local_solve": winners}


def run(quick: bool = False) -> dict[str, Any]:
    """Measure each size (see the module docstring); skipped while the Ray backend is missing."""
    try:
        import catopt_dsl.runtime.ray_backend  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"not available: catopt_dsl.runtime.ray_backend is missing ({exc})"}
    if quick:
        # A local Ray takes 10-60 s to start on this machine: too much for the 2-minute smoke run.
        return {"skipped": "not run with --quick (a local Ray alone takes 10-60 s to start)"}
    sizes = (8, 64, 512)
    k1, k2 = 5, 25
    cores = _usable_cores()
    results = [_spawn(n, k1, k2) for n in sizes]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([f"{r['n']:,}", f"ERROR: {r['error']}", "-", "-", "-", "-", "-"] + ["-"] * len(LOCAL_SOLVE_MS))
            continue
        overhead = r["ray_round_s"] - r["in_process_round_s"]
        model = crossover(r["n"], overhead, r["in_process_round_s"], cores)
        r["overhead_s"] = overhead
        r["model"] = model
        rows.append(
            [f"{r['n']:,}", fmt_num(r["in_process_round_s"] * 1000), fmt_num(r["ray_round_s"] * 1000),
             fmt_num(overhead * 1000), fmt_num(r["ray_startup_s"]), fmt_num(r["ray_fixed_s"]),
             fmt_num(model["breakeven_local_solve_s"] * 1000)]
            + [model["per_local_solve"][f"{ms:g}"]["winner"] for ms in LOCAL_SOLVE_MS]
        )
    table = {
        "title": f"Per-round times (ms, rounds {k1}..{k2}) and the crossover model with P = {cores} cores",
        "columns": ["members", "in-process round ms", "Ray round ms", "Ray overhead per round ms",
                    "Ray start-up + first run s", "Ray per-run fixed cost s", "break-even local solve ms"]
        + [f"faster at {ms:g} ms local solve" for ms in LOCAL_SOLVE_MS],
        "rows": rows,
    }
    notes = [
        "Round times come from the difference of a K2-round and a K1-round run with the stopping test off "
        "(eps 0, fixed rho) in one Ray session (started, with its actors, before the timed runs), so per-run fixed costs cancel out; the fast-path lasso makes local solves negligible.",
        "The crossover columns are a model on the measured numbers (in-process: N t + c_in per round; Ray: "
        f"overhead + c_in + ceil(N / {cores}) t), not runs with synthetic slow local solvers.",
    ]
    return {"tables": [table], "targets": [], "notes": notes, "sizes": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, type=int, metavar=("N", "K1", "K2"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    print(json.dumps(run(quick=args.quick), indent=2, default=str))


if __name__ == "__main__":
    main()
