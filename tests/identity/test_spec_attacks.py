"""The attack suite against a plan whose owners come from the spec.

``examples/gpu_fleet.cat`` with an ``owner "did:key:..."`` clause on each tenant, run signed with
``RunAuth.for_plan`` (the spec's owners, nothing else), under the attackers of
``tests/sync/test_sync_auth.py``: a forged signature, a wrong-tenant report, a replay, a stale
epoch, a frame for another plan and a frame from a removed member. Each is refused, counted under
its reason in the run's report (``result.run.rejected_by``, what ``solve --json`` prints as
``membership.rejected_by``), and the result equals the unattacked signed run's: same status,
objective to 1e-9, the same iterates.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver import SolveResult
from catopt_dsl.sync.auth import RunAuth
from catopt_dsl.sync.run import DistributedSolve

HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# The attackers and the tenants' keys of the protocol-level suite; here the owners are the spec's.
suite = _load("_sync_attack_suite", HERE.parent / "sync" / "test_sync_auth.py")
signed_runs = _load("_signed_runs", HERE / "test_signed_runs.py")

ATTACKS = {name: suite.ATTACKS[name] for name in (
    "forged signature", "wrong-tenant report", "replay", "stale epoch", "other-plan frame", "removed member",
)}


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> IRPlan:
    folder = tmp_path_factory.mktemp("owned")
    return load_plan(signed_runs.owned_fleet(folder, {t: k.did for t, k in suite.KEYS.items()}))


def auth(plan: IRPlan) -> RunAuth:
    return RunAuth.for_plan(plan, suite.KEYS.values(), suite.COORD)  # owners: the spec's, only


_baselines: dict[bool, tuple[SolveResult, int]] = {}


def baseline(plan: IRPlan, leave: bool = False) -> tuple[SolveResult, int]:
    """The unattacked signed run (tenant_d leaving at round 6 with ``leave``): result, applied frames."""
    if leave not in _baselines:
        run = DistributedSolve(plan, suite.OPTIONS, auth=auth(plan), leave_at={4: 6} if leave else None)
        result = run.run()
        assert result.status == ("member_lost" if leave else "optimal")
        assert result.run is not None and result.run.signed and result.run.rejected == 0
        _baselines[leave] = (result, run.trace.coordinator_stats.applied)
    return _baselines[leave]


def test_the_owners_come_from_the_spec(plan: IRPlan) -> None:
    a = auth(plan)
    assert {o.name: o.owner for o in plan.objects} == {t: k.did for t, k in suite.KEYS.items()}
    assert dict(a.owners.bindings) == {o.name: o.owner for o in plan.objects}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_on_a_spec_owned_plan_is_refused_counted_and_changes_nothing(plan: IRPlan, name: str) -> None:
    attack, reasons = ATTACKS[name]
    leave = name == "removed member"
    ref, applied = baseline(plan, leave)
    at = suite.Attacker({t: [attack] for t in (24, 25, 61)})
    run = DistributedSolve(plan, suite.OPTIONS, transport=at, auth=auth(plan), leave_at={4: 6} if leave else None)
    result = run.run()
    assert result.run is not None
    report = result.run
    assert set(report.rejected_by) == reasons, report.rejected_by  # counted in the run's report, by reason
    assert report.rejected == sum(report.rejected_by.values()) >= 3
    assert report.signed
    assert run.trace.coordinator_stats.applied == applied  # not one forged contribution applied
    assert result.status == ref.status
    assert result.objective is not None and ref.objective is not None
    assert abs(result.objective - ref.objective) <= 1e-9
    suite.same_result(result, ref)
