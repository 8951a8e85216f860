"""End-to-end runs of the toy averaging problem over the fault-injecting transport."""

from __future__ import annotations

import numpy as np
import pytest

from catopt_dsl.sync.driver import run_apps
from catopt_dsl.sync.protocol import BroadcastState, RoundInput, SyncSettings
from catopt_dsl.sync.toy import AveragingCoordinator, AveragingNode
from catopt_dsl.sync.transport import FaultPlan, FaultyTransport

FAULTS = FaultPlan(drop=0.2, duplicate=0.1, reorder=0.3, delay=0.2, corrupt=0.02)


class RecordingCoordinator(AveragingCoordinator):
    """Also records the inputs of each closed round, to check quorum and staleness."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[RoundInput] = []

    def update(self, inp: RoundInput) -> BroadcastState:
        self.inputs.append(inp)
        return super().update(inp)


def _values(seed: int, n: int) -> dict[int, float]:
    rng = np.random.default_rng(seed)
    return {i: float(rng.normal(0.0, 10.0)) for i in range(1, n + 1)}


def _run(seed: int, settings: SyncSettings, faults: FaultPlan = FAULTS, n: int = 6, rounds: int = 120):
    vals = _values(seed, n)
    nodes = {i: AveragingNode(v) for i, v in vals.items()}
    coord = RecordingCoordinator()
    res, driver = run_apps(coord, nodes, rounds, settings, faults, seed=seed)
    return vals, nodes, coord, driver, res


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(
    "settings",
    [SyncSettings(), SyncSettings(quorum=0.5, max_staleness=2)],
    ids=["synchronous", "bounded-staleness"],
)
def test_toy_average_is_exact_under_faults(seed: int, settings: SyncSettings) -> None:
    vals, nodes, coord, driver, res = _run(seed, settings)
    assert res.rounds == 120 and res.members == tuple(sorted(vals))
    stats = driver.protocol.stats
    assert stats.duplicates > 0 and stats.retransmits > 0 and stats.rejected > 0  # faults happened
    for m in res.members:
        assert nodes[m].x == coord.sums[m]  # every increment applied exactly once, in order
    z = coord.history[-1][2]
    assert abs(z - float(np.mean(list(vals.values())))) <= 1e-9
    # no contribution used was older than tau, and rounds closed only on a quorum
    tau, s = settings.max_staleness, settings.quorum
    for inp in coord.inputs:
        ages = [inp.age(m) for m in inp.members if inp.age(m) is not None]
        assert all(a <= tau for a in ages)
        fresh = sum(1 for m in inp.members if inp.age(m) == 0)
        assert fresh >= np.ceil(s * len(inp.members) - 1e-9)
    if settings.quorum < 1:
        assert any(sum(1 for m in i.members if i.age(m) == 0) < len(i.members) for i in coord.inputs)


def test_same_seed_same_trace_different_seed_different_trace() -> None:
    runs = [_run(seed, SyncSettings(quorum=0.5, max_staleness=1), rounds=40) for seed in (5, 5, 6)]
    traces = [r[3].transport.trace for r in runs]
    assert traces[0] == traces[1] and traces[0] != traces[2]
    assert runs[0][2].history == runs[1][2].history
    assert runs[0][3].protocol.applied_log == runs[1][3].protocol.applied_log


def test_transport_alone_is_deterministic() -> None:
    def go(seed: int) -> list[tuple[int, int, bytes]]:
        t = FaultyTransport(FaultPlan(drop=0.3, duplicate=0.3, reorder=0.5, delay=0.5, corrupt=0.1), seed)
        got = []
        for now in range(50):
            t.send(1, 2, bytes([now]) * 8, now)
            got += t.deliver(now)
        return got + t.deliver(10**6)

    a, b = go(11), go(11)
    assert a == b and a != go(12)
    order = [d[2][0] for d in a if d[2] == bytes([d[2][0]]) * 8]
    assert order != sorted(order)  # reordered and delayed


def test_crash_at_round_k_removes_the_member() -> None:
    faults = FaultPlan(drop=0.1, duplicate=0.1, reorder=0.2, crash_at={2: 10})
    vals, nodes, coord, driver, res = _run(4, SyncSettings(member_timeout=20), faults, n=4, rounds=80)
    assert res.crashed == (2,) and res.members == (1, 3, 4)
    epochs = {e for r, e, mem in res.membership if r > 10 and 2 not in mem}
    assert epochs and min(epochs) > min(e for r, e, mem in res.membership if r <= 10)
    # rounds closed with the crashed node are weighted over 4 members, afterwards over 3
    assert all(len(i.members) == 4 for i in coord.inputs[:10])
    assert coord.inputs[-1].members == (1, 3, 4) and 2 not in coord.sums
    survivors = [vals[m] for m in (1, 3, 4)]
    assert abs(coord.history[-1][2] - float(np.mean(survivors))) <= 1e-9


def test_join_at_round_k_adds_the_member() -> None:
    faults = FaultPlan(drop=0.2, duplicate=0.1, reorder=0.2, join_at={5: 15})
    vals, nodes, coord, driver, res = _run(7, SyncSettings(), faults, n=5, rounds=90)
    assert res.joined_late == (5,) and res.members == (1, 2, 3, 4, 5)
    first = min(i.round for i in coord.inputs if 5 in i.members)
    assert first >= 15
    assert all(5 not in i.members for i in coord.inputs if i.round < 15)
    assert abs(coord.history[-1][2] - float(np.mean(list(vals.values())))) <= 1e-9
    assert nodes[5].x == coord.sums[5]


def test_drop_policy_removes_a_straggler_past_tau_quickly() -> None:
    faults = FaultPlan(crash_at={3: 6})
    settings = SyncSettings(quorum=0.5, max_staleness=2, stale_policy="drop", member_timeout=1000)
    vals, nodes, coord, driver, res = _run(1, settings, faults, n=4, rounds=70)
    assert res.members == (1, 2, 4) and driver.protocol.stats.dropped_members == 1
    dropped_round = min(i.round for i in coord.inputs if 3 not in i.members)
    assert dropped_round <= 6 + 2 + 1  # within tau rounds of its last answer, not after member_timeout
    assert abs(coord.history[-1][2] - float(np.mean([vals[m] for m in (1, 2, 4)]))) <= 1e-9


def test_block_policy_holds_rounds_for_a_slow_member() -> None:
    # node 3's every message is slow: with tau=1 the others may run at most one round ahead
    settings = SyncSettings(quorum=0.25, max_staleness=1)
    vals, nodes, coord, driver, res = _run(2, settings, FaultPlan(delay=0.6, max_delay=6), n=4, rounds=60)
    assert res.members == (1, 2, 3, 4)
    assert max(inp.age(m) or 0 for inp in coord.inputs for m in inp.members) == 1
    assert abs(coord.history[-1][2] - float(np.mean(list(vals.values())))) <= 1e-9
