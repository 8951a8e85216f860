"""An in-process driver: one coordinator and its nodes exchanging frames over a FaultyTransport.

The loop is single-threaded and ordered (deliveries in transport order, then ticks in id order),
so a run is a function of (apps, settings, fault plan, seed) alone. A later ``sync/run.py`` can
reuse it with solver-backed apps; here it drives the toy averaging problem in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from catopt_dsl.sync.protocol import (
    COORDINATOR_ID,
    CoordinatorApp,
    CoordinatorProtocol,
    NodeApp,
    NodeProtocol,
    Send,
    SyncSettings,
)
from catopt_dsl.sync.transport import FaultPlan, FaultyTransport


@dataclass
class ClusterResult:
    """How a run ended."""

    rounds: int
    ticks: int
    members: tuple[int, ...]
    epoch: int
    crashed: tuple[int, ...]
    joined_late: tuple[int, ...]
    membership: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)  # (round, epoch, members)


class LocalCluster:
    """Runs nodes ``node_apps`` (id -> app; ids >= 1) against ``coordinator_app``."""

    def __init__(
        self,
        coordinator_app: CoordinatorApp,
        node_apps: Mapping[int, NodeApp],
        settings: SyncSettings = SyncSettings(),
        faults: FaultPlan = FaultPlan(),
        seed: int = 0,
    ):
        if COORDINATOR_ID in node_apps:
            raise ValueError(f"node id {COORDINATOR_ID} is the coordinator's")
        self.settings = settings
        self.faults = faults
        self.transport = FaultyTransport(faults, seed)
        self.coordinator = CoordinatorProtocol(coordinator_app, settings)
        self.node_apps = dict(node_apps)
        self.nodes: dict[int, NodeProtocol] = {}
        self.crashed: set[int] = set()
        self.joined_late: set[int] = set()
        self.now = 0
        self.membership: list[tuple[int, int, tuple[int, ...]]] = []

    def _send(self, src: int, sends: list[Send]) -> None:
        for dst, data in sends:
            self.transport.send(src, dst, data, self.now)

    def _start_node(self, nid: int) -> None:
        node = NodeProtocol(nid, f"node{nid}", self.node_apps[nid], self.settings)
        self.nodes[nid] = node
        self._send(nid, node.start(self.now))

    def _schedule(self) -> None:
        rnd = self.coordinator.round
        for nid in sorted(self.faults.crash_at):
            if nid in self.nodes and nid not in self.crashed and rnd >= self.faults.crash_at[nid]:
                self.crashed.add(nid)  # it simply stops: no Leave, its in-flight frames still arrive
        for nid in sorted(self.faults.join_at):
            if nid in self.node_apps and nid not in self.nodes and rnd >= self.faults.join_at[nid]:
                self.joined_late.add(nid)
                self._start_node(nid)

    def run(self, rounds: int, max_ticks: int = 100_000) -> ClusterResult:
        """Advance until the coordinator has closed ``rounds`` rounds (or ``max_ticks`` passed)."""
        coord = self.coordinator
        if self.now == 0:
            coord.start(0)
            for nid in sorted(self.node_apps):
                if nid not in self.faults.join_at:
                    self._start_node(nid)
        last = (coord.round, coord.epoch)
        while coord.round < rounds and self.now < max_ticks:
            self.now += 1
            for src, dst, data in self.transport.deliver(self.now):
                if dst == COORDINATOR_ID:
                    self._send(COORDINATOR_ID, coord.receive(data, self.now))
                elif dst in self.nodes and dst not in self.crashed:
                    self._send(dst, self.nodes[dst].receive(data, self.now))
            self._send(COORDINATOR_ID, coord.tick(self.now))
            for nid in sorted(self.nodes):
                if nid not in self.crashed:
                    self._send(nid, self.nodes[nid].tick(self.now))
            self._schedule()
            if (coord.round, coord.epoch) != last:
                last = (coord.round, coord.epoch)
                self.membership.append((coord.round, coord.epoch, coord.members))
        return ClusterResult(
            rounds=coord.round,
            ticks=self.now,
            members=coord.members,
            epoch=coord.epoch,
            crashed=tuple(sorted(self.crashed)),
            joined_late=tuple(sorted(self.joined_late)),
            membership=list(self.membership),
        )
