"""Crashes, leaves and late joins: the optimum of the plan as it then stands, and never called `optimal`
unless that plan is the whole plan (a lost member ends `member_lost`, the remaining plan's solution
marked as such)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.solver import SolveResult, solve_centralized
from catopt_dsl.sync.protocol import SyncSettings
from catopt_dsl.sync.run import DistributedSolve, assign_nodes, node_ids, restrict_plan
from catopt_dsl.sync.transport import FaultPlan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOSSY = dict(drop=0.2, duplicate=0.1, reorder=0.3)


def _agree(got: SolveResult, ref: SolveResult, lost: tuple[str, ...] = ()) -> None:
    """``got`` reached ``ref``'s optimum; with ``lost`` it is marked as the plan without them."""
    assert ref.status == "optimal", ref.message
    assert got.run is not None
    if lost:
        assert got.status == "member_lost", got.message
        assert got.run.to_json()["remaining_status"] == "optimal" and tuple(got.run.to_json()["lost"]) == lost
        assert all(f"`{name}`" in got.message for name in lost) and "WITHOUT" in got.message
    else:
        assert got.status == "optimal", got.message
        assert got.run.to_json()["lost"] == []
    assert got.objective is not None and ref.objective is not None
    assert abs(got.objective - ref.objective) <= 1e-4 * max(1.0, abs(ref.objective)), (got.objective, ref.objective)
    assert set(got.objects) == set(ref.objects)
    for obj, values in ref.objects.items():
        for var, val in values.items():
            scale = max(1.0, float(np.abs(val).max(initial=0.0)))
            assert float(np.abs(got.objects[obj][var] - val).max(initial=0.0)) <= 1e-3 * scale, (obj, var)


@pytest.fixture(scope="module")
def fleet_without_b(tmp_path_factory: pytest.TempPathFactory) -> SolveResult:
    """The centralised optimum of gpu_fleet written without tenant_b (its spec, edited as text)."""
    folder = tmp_path_factory.mktemp("fleet")
    shutil.copytree(EXAMPLES / "data", folder / "data")
    shutil.copytree(EXAMPLES / "schemas", folder / "schemas")
    text = (EXAMPLES / "gpu_fleet.cat").read_text()
    text, n_obj = re.subn(r"LocalProblem tenant_b .*?\n}\n", "", text, flags=re.S)
    text, n_mor = re.subn(r"Morphism b_alloc [^\n]*\n", "", text)
    assert n_obj == 1 and n_mor == 1
    (folder / "gpu_fleet.cat").write_text(text)
    plan = load_plan(folder / "gpu_fleet.cat")
    assert [o.name for o in plan.objects] == ["tenant_a", "tenant_c", "tenant_d"]
    return solve_centralized(plan)


def test_crash_at_round_20_gives_the_optimum_without_the_tenant(fleet_without_b: SolveResult) -> None:
    plan = load_plan(EXAMPLES / "gpu_fleet.cat")
    b = node_ids(plan)["tenant_b"]
    run = DistributedSolve(plan, faults=FaultPlan(**LOSSY, crash_at={b: 20}), seed=1)
    result = run.run()
    _agree(result, fleet_without_b, lost=("tenant_b",))
    assert run.trace.crashed == (b,) and b not in run.trace.members
    assert run.trace.coordinator_stats.dropped_members == 1
    # the coordinator ran with all four until the crash was detected, then without tenant_b
    (it0, first), (it1, second) = run.app.rebuilds
    assert first == ("tenant_a", "tenant_b", "tenant_c", "tenant_d")
    assert second == ("tenant_a", "tenant_c", "tenant_d") and it1 >= 20
    # the full plan's optimum is a different point: the crash really changed the answer
    full = solve_centralized(plan)
    assert full.objective is not None and fleet_without_b.objective is not None
    assert abs(full.objective - fleet_without_b.objective) > 1.0


def test_restrict_plan_matches_the_written_variant(fleet_without_b: SolveResult) -> None:
    plan = load_plan(EXAMPLES / "gpu_fleet.cat")
    small = restrict_plan(plan, ["tenant_a", "tenant_c", "tenant_d"])
    assert [m.name for m in small.morphisms] == ["a_alloc", "c_alloc", "d_alloc"]
    assert [t.object for t in small.couplings[0].terms] == ["tenant_a", "tenant_c", "tenant_d"]
    got = solve_centralized(small)
    assert got.objective is not None and fleet_without_b.objective is not None
    assert abs(got.objective - fleet_without_b.objective) <= 1e-6 * abs(fleet_without_b.objective)
    with pytest.raises(KeyError):
        restrict_plan(plan, ["tenant_z"])


def test_join_at_round_20_gives_the_optimum_with_the_tenant() -> None:
    """Round 0 waits for tenant_b until the join deadline, then goes on without it; it joins at
    round 20, before the rest converged: the whole plan's optimum, `optimal`."""
    plan = load_plan(EXAMPLES / "gpu_fleet.cat")
    b = node_ids(plan)["tenant_b"]
    run = DistributedSolve(plan, faults=FaultPlan(**LOSSY, join_at={b: 20}), seed=2)
    result = run.run()
    _agree(result, solve_centralized(plan))
    assert run.trace.joined_late == (b,) and b in run.trace.members
    (it0, first), (it1, second) = run.app.rebuilds
    assert "tenant_b" not in first and "tenant_b" in second and it1 >= 20
    # the first round closed only after the join deadline (it waited for tenant_b)
    assert run.trace.round_metrics[0].tick >= run.settings.join_ticks


def test_min_members_stops_at_once_when_too_few_could_take_part() -> None:
    plan = load_plan(EXAMPLES / "gpu_fleet.cat")
    ids = node_ids(plan)
    crash = {ids["tenant_b"]: 10, ids["tenant_c"]: 10}
    result = DistributedSolve(plan, faults=FaultPlan(crash_at=crash), min_members=3).run()
    assert result.status == "member_lost" and result.objective is None
    assert result.run is not None and result.run.to_json()["remaining_status"] == "below_min_members"
    assert "--min-members 3" in result.message and "`tenant_b`" in result.message and "`tenant_c`" in result.message
    # with the default (1) the same run solves the remaining plan
    rest = DistributedSolve(plan, faults=FaultPlan(crash_at=crash)).run()
    assert rest.status == "member_lost" and rest.objective is not None
    assert rest.run is not None and rest.run.to_json()["remaining_status"] == "optimal"
    with pytest.raises(ValueError, match="min_members"):
        DistributedSolve(plan, min_members=5)


def test_leave_releases_the_share() -> None:
    """tenant_b leaves plan_deltas mid-run: the optimum is that of the `tenant_b_leaves` delta."""
    plan = load_plan(EXAMPLES / "plan_deltas.cat")
    b = node_ids(plan)["tenant_b"]
    run = DistributedSolve(plan, faults=FaultPlan(drop=0.2, reorder=0.3), seed=4, leave_at={b: 15})
    result = run.run()
    _agree(result, solve_centralized(plan.delta("tenant_b_leaves").result), lost=("tenant_b",))
    assert "left at tick" in result.message
    assert run.trace.left == (b,) and run.trace.coordinator_stats.dropped_members == 0
    # its coupling dual and copy are gone from the final state (the share was released)
    assert result.state is not None
    assert not any("b_usage" in key for key in result.state.duals)


def test_every_member_crashing_ends_as_a_stall_not_a_hang() -> None:
    plan = load_plan(EXAMPLES / "plan_deltas.cat")
    ids = sorted(node_ids(plan).values())
    run = DistributedSolve(
        plan,
        faults=FaultPlan(crash_at={i: 5 for i in ids}),
        settings=SyncSettings(member_timeout=10),
    )
    result = run.run()
    assert result.status == "member_lost" and "stalled" in result.message
    assert run.trace.members == () and 5 <= (result.iterations or 0) < 10
    assert result.run is not None and result.run.to_json()["members"] == []


def test_a_local_infeasibility_travels_back(tmp_path: Path) -> None:
    spec = tmp_path / "bad.cat"
    spec.write_text(
        "catopt 1;\n"
        "SharedVariables s { var w: float[2]; }\n"
        "LocalProblem ok { var w: float[2]; minimize sum_squares(w - 1); }\n"
        "LocalProblem broken { var w: float[2]; minimize sum_squares(w);\n"
        "  subject to { w >= 1; w <= 0; } }\n"
        "Limit agree on s { ok.w == s.w; broken.w == s.w; }\n"
    )
    plan = load_plan(spec)
    run = DistributedSolve(plan, faults=FaultPlan(drop=0.2), seed=0)
    result = run.run()
    assert result.status == "infeasible" and result.objective is None
    assert "`broken`" in result.message


def test_assign_nodes_batches_contiguously() -> None:
    plan = load_plan(EXAMPLES / "sites_200.cat")
    names = [o.name for o in plan.objects]
    got = assign_nodes(plan, 3)
    assert list(got) == [1, 2, 3]
    assert [len(v) for v in got.values()] == [67, 67, 66]
    assert [n for v in got.values() for n in v] == names
    assert assign_nodes(plan, 500) == {i + 1: (n,) for i, n in enumerate(names)}
    assert len(assign_nodes(plan)) == 32  # the default cap
