"""Warm start after a PlanDelta: iterations and time of a warm re-solve vs a cold solve.

On ``examples/plan_deltas.cat``: solve the base plan, then for each PlanDelta solve the plan it
yields twice -- cold, and warm-started from the base solution through
:func:`catopt_dsl.runtime.deltas.apply_delta` -- and report iterations, wall time and the
objective gap to the centralised solve of the changed plan.

    python benchmarks/bench_warmstart.py [--quick]

``run(quick=False) -> dict``: ``{"rows": [{"delta", "cold_iterations", "warm_iterations",
"cold_time_s", "warm_time_s", "cold_status", "warm_status", "warm_rel_gap"}, ...], "tables": [...],
"targets": [...], "notes": [...]}``. Times are the median of ``repeats`` runs (1 with
``--quick``, 5 otherwise); iteration counts are deterministic.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from catopt_dsl.compile import load_plan
from catopt_dsl.runtime.deltas import apply_delta
from catopt_dsl.solver import SolveOptions, SolveResult, solve, solve_centralized

SPEC = Path(__file__).resolve().parents[1] / "examples" / "plan_deltas.cat"


def _timed(fn: Any, repeats: int) -> tuple[SolveResult, float]:
    times: list[float] = []
    result: SolveResult | None = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return result, statistics.median(times)


def run(quick: bool = False) -> dict[str, Any]:
    """Cold vs warm re-solve after each PlanDelta of ``examples/plan_deltas.cat``."""
    repeats = 1 if quick else 5
    options = SolveOptions()
    plan = load_plan(SPEC)
    base = solve(plan, options)
    rows: list[dict[str, Any]] = []
    for delta in plan.deltas:
        changed = delta.result
        cold, cold_t = _timed(lambda: solve(changed, options), repeats)
        warm, warm_t = _timed(lambda: apply_delta(plan, delta.name, base, options=options), repeats)
        ref = solve_centralized(changed).objective
        gap = None
        if ref is not None and warm.objective is not None:
            gap = abs(warm.objective - ref) / max(1.0, abs(ref))
        rows.append(
            {
                "delta": delta.name,
                "cold_iterations": cold.iterations,
                "warm_iterations": warm.iterations,
                "cold_time_s": cold_t,
                "warm_time_s": warm_t,
                "cold_status": cold.status,
                "warm_status": warm.status,
                "warm_rel_gap": gap,
            }
        )
    table = {
        "title": "plan_deltas.cat: re-solve after each PlanDelta",
        "columns": ["delta", "cold iters", "warm iters", "cold s", "warm s", "warm rel. gap"],
        "rows": [
            [
                r["delta"],
                r["cold_iterations"],
                r["warm_iterations"],
                f"{r['cold_time_s']:.3f}",
                f"{r['warm_time_s']:.3f}",
                "n/a" if r["warm_rel_gap"] is None else f"{r['warm_rel_gap']:.1e}",
            ]
            for r in rows
        ],
    }
    targets = [
        {
            "name": f"warm < cold iterations ({r['delta']})",
            "required": "fewer iterations warm",
            "measured": f"{r['warm_iterations']} vs {r['cold_iterations']}",
            "met": bool(
                r["warm_iterations"] is not None
                and r["cold_iterations"] is not None
                and r["warm_iterations"] < r["cold_iterations"]
            ),
        }
        for r in rows
    ]
    notes = [
        f"base plan solved in {base.iterations} iterations; default SolveOptions; "
        f"times are the median of {repeats} run(s) on this machine (not asserted anywhere)",
        "warm = x, z, duals and rho of the base solve; couplings the delta touched are re-priced "
        "(mean term price, zero where the kept copies leave slack)",
    ]
    return {"rows": rows, "tables": [table], "targets": targets, "notes": notes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick), indent=2, default=str))


if __name__ == "__main__":
    main()
