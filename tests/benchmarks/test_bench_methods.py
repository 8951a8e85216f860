"""The measurement logic of the solver and Ray benchmarks, on synthetic traces (no timings asserted)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.bench_ray import crossover
from benchmarks.bench_solver import central_problem, reference_objective, time_to_gap
from benchmarks.specgen_solver import fleet_plan, lasso_plan
from catopt_dsl.solver import SolveResult, solve_centralized


def _fake_run(objectives: list[float], status: str = "optimal") -> Callable[[Callable[[dict[str, float]], None]], SolveResult]:
    def run(progress: Callable[[dict[str, float]], None]) -> SolveResult:
        for k, f in enumerate(objectives, start=1):
            progress({"iteration": float(k), "r_prim": 1.0 / k, "r_dual": 0.0, "rho": 1.0, "objective": f})
        return SolveResult(status, objectives[-1], len(objectives), 0.0, 0.0, 0.0, {}, {})

    return run


def test_a_crossing_that_leaves_the_band_does_not_count() -> None:
    ref = 100.0
    # In band at 3, out at 4, back in from 6 on; the solver stops by itself at 8.
    trace = [110.0, 105.0, 100.001, 99.0, 100.5, 100.002, 100.0005, 100.0001]
    out = time_to_gap(_fake_run(trace), ref, budget_s=1e9, hold=100)
    assert out["reached"] and out["iteration"] == 6
    assert out["iterations_run"] == 8 and out["status"] == "optimal"
    assert out["final_gap"] == pytest.approx(1e-6)


def test_hold_stops_the_run_early() -> None:
    trace = [120.0, 100.0] + [100.0] * 50
    out = time_to_gap(_fake_run(trace), 100.0, budget_s=1e9, hold=5)
    assert out["reached"] and out["iteration"] == 2
    assert out["iterations_run"] == 6 and out["status"] == "stopped"


def test_never_in_band_is_not_reached() -> None:
    out = time_to_gap(_fake_run([10.0, 9.0, 8.5], status="max_iterations"), 1.0, budget_s=1e9)
    assert not out["reached"] and out["time_s"] is None and out["iteration"] is None
    assert out["final_gap"] == pytest.approx(7.5)
    # The gap is relative to max(1, |f*|): for a tiny reference it is absolute.
    out = time_to_gap(_fake_run([1e-5]), 0.0, budget_s=1e9)
    assert out["reached"] and out["iteration"] == 1


def test_central_problem_matches_the_solvers_centralised_solve(tmp_path: Path) -> None:
    for plan in (lasso_plan(tmp_path / "lasso", 3), fleet_plan(tmp_path / "fleet", 4)):
        ours = central_problem(plan)
        ours.solve()
        theirs = solve_centralized(plan)
        assert theirs.status == "optimal"
        assert ours.value == pytest.approx(theirs.objective, rel=1e-5, abs=1e-6)
        assert reference_objective(plan) == pytest.approx(theirs.objective, rel=1e-5, abs=1e-6)


def test_fleet_capacity_binds(tmp_path: Path) -> None:
    # The benchmark is only a sharing benchmark if the capacity limit is active at the optimum.
    plan = fleet_plan(tmp_path, 6)
    result = solve_centralized(plan)
    used = sum(result.objects[o.name]["x"] for o in plan.objects)
    (coupling,) = plan.couplings
    assert used == pytest.approx(coupling.rhs.reshape(-1), rel=1e-4)


def test_crossover_model() -> None:
    # 64 members, 2 cores: Ray saves 32 local solves per round, so 3.2 ms overhead breaks even at 0.1 ms.
    model = crossover(64, 3.2e-3, 1e-3, 2)
    assert model["breakeven_local_solve_s"] == pytest.approx(1e-4)
    assert {v["winner"] for v in model["per_local_solve"].values()} == {"Ray"}
    # 8 members on 2 cores save 4 local solves per round: 200 ms overhead breaks even at 50 ms.
    slow = crossover(8, 0.2, 1e-3, 2)
    assert slow["breakeven_local_solve_s"] == pytest.approx(0.05)
    assert [slow["per_local_solve"][k]["winner"] for k in ("1", "10", "100")] == ["in-process", "in-process", "Ray"]
    assert math.isinf(crossover(1, 1.0, 0.0, 2)["breakeven_local_solve_s"])
