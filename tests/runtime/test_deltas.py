"""Acceptance 5: a warm-started re-solve after a PlanDelta beats a cold solve of the changed plan."""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.runtime.deltas import PlanSession, apply_delta, warm_state
from catopt_dsl.solver import SolveOptions, SolveResult, solve, solve_centralized

ROOT = Path(__file__).resolve().parents[2]
DELTAS = ["tenant_d_joins", "tenant_b_leaves", "upgrade_schema"]


@lru_cache(maxsize=None)
def base_plan() -> IRPlan:
    return load_plan(ROOT / "examples" / "plan_deltas.cat")


@lru_cache(maxsize=None)
def base_result() -> SolveResult:
    result = solve(base_plan())
    assert result.status == "optimal"
    return result


def _close(a: float | None, b: float | None, rel: float = 1e-4) -> bool:
    return a is not None and b is not None and abs(a - b) <= rel * max(1.0, abs(b))


@lru_cache(maxsize=None)
def bench_rows() -> dict[str, dict[str, Any]]:
    """One quick run of ``benchmarks/bench_warmstart.py`` (cold and warm solve of every delta)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.bench_warmstart import run

    return {r["delta"]: r for r in run(quick=True)["rows"]}


@pytest.mark.parametrize("delta", DELTAS)
def test_warm_start_takes_fewer_iterations_than_cold(delta: str) -> None:
    rows = bench_rows()
    assert list(rows) == DELTAS
    r = rows[delta]
    assert r["cold_status"] == r["warm_status"] == "optimal"
    assert r["warm_iterations"] < r["cold_iterations"], (r["warm_iterations"], r["cold_iterations"])
    assert r["warm_rel_gap"] is not None and r["warm_rel_gap"] <= 1e-4  # vs the centralised solve
    assert r["warm_time_s"] > 0 and r["cold_time_s"] > 0


def test_apply_delta_solves_the_changed_plan() -> None:
    plan = base_plan()
    warm = apply_delta(plan, "tenant_d_joins", base_result())
    changed = plan.delta("tenant_d_joins").result
    assert set(warm.objects) == {o.name for o in changed.objects}
    assert _close(warm.objective, solve_centralized(changed).objective)
    assert warm.iterations == bench_rows()["tenant_d_joins"]["warm_iterations"]  # deterministic


def test_distributed_backend_warm_starts_the_same_way() -> None:
    plan = base_plan()
    inproc = apply_delta(plan, "tenant_d_joins", base_result())
    dist = apply_delta(plan, "tenant_d_joins", base_result(), backend="distributed")
    assert dist.iterations == inproc.iterations
    assert _close(dist.objective, inproc.objective, 1e-9)


def test_new_member_starts_from_z_and_removed_share_is_released() -> None:
    plan = base_plan()
    joined = plan.delta("tenant_d_joins").result
    state = warm_state(joined, base_result(), before=plan)
    assert np.array_equal(state.x["tenant_d"], np.zeros(2))  # sharing only: no z to copy
    keys = {k for k in state.duals if k.startswith("coupling:cap#0:")}
    assert keys == {f"coupling:cap#0:{m}.hours" for m in ("a_usage", "b_usage", "c_usage", "d_usage")}
    # the capacity grew and the old copies leave room: complementary slackness prices it at zero
    assert all(np.array_equal(state.duals[k], np.zeros(2)) for k in keys)
    left = warm_state(plan.delta("tenant_b_leaves").result, base_result(), before=plan)
    assert not any("b_usage" in k for k in left.duals) and "tenant_b" in left.x  # x kept, dual gone
    same = warm_state(plan.delta("upgrade_schema").result, base_result(), before=plan)
    assert base_result().state is not None
    for k, v in base_result().state.duals.items():
        np.testing.assert_array_equal(same.duals[k], v)  # an untouched coupling keeps its prices


def test_warm_state_from_a_centralised_result() -> None:
    plan = base_plan()
    cent = solve_centralized(plan)
    assert cent.state is None
    result = apply_delta(plan, "upgrade_schema", cent)
    assert result.status == "optimal"
    assert _close(result.objective, solve_centralized(plan.delta("upgrade_schema").result).objective)


def test_session_and_errors() -> None:
    session = PlanSession(base_plan(), SolveOptions())
    first = session.solve()
    second = session.apply("tenant_b_leaves")
    assert session.plan is not None and [o.name for o in session.plan.objects] == ["tenant_a", "tenant_c"]
    assert len(session.results) == 2 and session.last is second and first.status == second.status == "optimal"
    with pytest.raises(KeyError):
        apply_delta(base_plan(), "no_such_delta", first)
    with pytest.raises(ValueError):
        apply_delta(base_plan(), "upgrade_schema", first, backend="carrier-pigeon")


def test_cli_delta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["solve", "examples/plan_deltas.cat", "--delta", "tenant_d_joins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads([ln for ln in result.output.splitlines() if ln.startswith("{")][-1])
    assert sorted(data["objects"]) == ["tenant_a", "tenant_b", "tenant_c", "tenant_d"]
    assert _close(data["objective"], solve_centralized(base_plan().delta("tenant_d_joins").result).objective)
