"""The one event loop that runs a coordinator and its nodes over a transport, whatever the apps.

``Driver.run`` advances time in ticks: the transport delivers what is due (frames to the
coordinator are handled at once; frames to nodes are handed to the node host), every live node
ticks, the coordinator ticks, then the fault schedule applies (crashes, late joins, graceful
Leaves at the coordinator round they are scheduled for). The loop is single-threaded and ordered
(deliveries in transport order, nodes in id order), so a run is a function of its inputs alone.

The solver's distributed ADMM (``run.py``), the Ray backend (a :class:`NodeHost` whose nodes are
actors) and the protocol's own fault tests (toy apps, :func:`run_apps`) all use this loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from catopt_dsl.sync.protocol import (
    COORDINATOR_ID,
    CoordinatorApp,
    CoordinatorProtocol,
    FrameAuth,
    NodeApp,
    NodeProtocol,
    ProtocolStats,
    Send,
    SyncSettings,
)
from catopt_dsl.sync.transport import FaultPlan, FaultyTransport

__all__ = ["Driver", "LocalNodes", "NodeHost", "RunTrace", "Transport", "run_apps"]


class Transport(Protocol):
    """What the driver needs of a transport (``FaultyTransport`` is one)."""

    def send(self, src: int, dst: int, data: bytes, now: int) -> None: ...

    def deliver(self, now: int) -> list[tuple[int, int, bytes]]: ...


class NodeHost(Protocol):
    """Where the nodes run: in this process (:class:`LocalNodes`) or as Ray actors."""

    def start(self, node_id: int, now: int) -> list[Send]: ...

    def leave(self, node_id: int, now: int) -> list[Send]: ...

    def crash(self, node_id: int) -> None: ...

    def exchange(self, inbox: Mapping[int, list[bytes]], now: int) -> list[tuple[int, list[Send]]]:
        """Hand each node its frames for this tick, then tick every live node; return their sends."""
        ...

    def close(self) -> None: ...


#: node id -> (its app, a short label for its Join, its frame signer or None)
AppFactory = Callable[[int], tuple[NodeApp, str, "FrameAuth | None"]]


class LocalNodes:
    """Runs each node's :class:`NodeProtocol` and app in this process."""

    def __init__(self, make_app: AppFactory, settings: SyncSettings) -> None:
        self.make_app = make_app
        self.settings = settings
        self.nodes: dict[int, NodeProtocol] = {}
        self.apps: dict[int, NodeApp] = {}
        self.crashed: set[int] = set()

    def start(self, node_id: int, now: int) -> list[Send]:
        app, label, auth = self.make_app(node_id)
        node = NodeProtocol(node_id, label, app, self.settings, auth=auth)
        self.apps[node_id], self.nodes[node_id] = app, node
        self.crashed.discard(node_id)
        return node.start(now)

    def leave(self, node_id: int, now: int) -> list[Send]:
        return self.nodes[node_id].leave(now)

    def crash(self, node_id: int) -> None:
        self.crashed.add(node_id)

    def exchange(self, inbox: Mapping[int, list[bytes]], now: int) -> list[tuple[int, list[Send]]]:
        out: list[tuple[int, list[Send]]] = []
        for nid in sorted(self.nodes):
            if nid in self.crashed:
                continue
            node = self.nodes[nid]
            sends: list[Send] = []
            for data in inbox.get(nid, ()):
                sends += node.receive(data, now)
            sends += node.tick(now)
            out.append((nid, sends))
        return out

    def close(self) -> None:
        self.nodes.clear()
        self.apps.clear()


@dataclass
class RunTrace:
    """What happened on the wire: protocol counters and membership changes."""

    ticks: int = 0
    rounds: int = 0
    epoch: int = 0
    members: tuple[int, ...] = ()
    crashed: tuple[int, ...] = ()
    joined_late: tuple[int, ...] = ()
    left: tuple[int, ...] = ()
    coordinator_stats: ProtocolStats = field(default_factory=ProtocolStats)
    #: (round, epoch, members) each time the round or the epoch moved
    membership: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)


class Driver:
    """Runs ``protocol`` and the nodes of ``host`` (ids ``node_ids``) over ``transport``.

    ``faults`` schedules crashes and late joins (node id -> coordinator round); ``leave_at``
    schedules graceful Leaves the same way.
    """

    def __init__(
        self,
        protocol: CoordinatorProtocol,
        host: NodeHost,
        node_ids: tuple[int, ...],
        transport: Transport,
        faults: FaultPlan = FaultPlan(),
        leave_at: Mapping[int, int] | None = None,
    ) -> None:
        self.protocol = protocol
        self.host = host
        self.node_ids = tuple(sorted(node_ids))
        self.transport = transport
        self.faults = faults
        self.leave_at = dict(leave_at or {})
        self.now = 0
        self.started: set[int] = set()
        self.crashed: set[int] = set()
        self.left: set[int] = set()
        self.late: set[int] = set()
        self.membership: list[tuple[int, int, tuple[int, ...]]] = []

    def _send(self, src: int, sends: list[Send]) -> None:
        for dst, data in sends:
            self.transport.send(src, dst, data, self.now)

    def _start(self, nid: int) -> None:
        self.started.add(nid)
        self._send(nid, self.host.start(nid, self.now))

    def _schedule(self) -> None:
        rnd = self.protocol.round
        for nid in sorted(self.faults.crash_at):
            if nid in self.started and nid not in self.crashed and rnd >= self.faults.crash_at[nid]:
                self.crashed.add(nid)  # it stops silently; what it already sent still arrives
                self.host.crash(nid)
        for nid in sorted(self.faults.join_at):
            if nid in self.node_ids and nid not in self.started and rnd >= self.faults.join_at[nid]:
                self.late.add(nid)
                self._start(nid)
        for nid in sorted(self.leave_at):
            if nid in self.started and nid not in self.crashed | self.left and rnd >= self.leave_at[nid]:
                self.left.add(nid)
                self._send(nid, self.host.leave(nid, self.now))

    def tick(self) -> None:
        """One tick of the whole system (starts the run on the first call)."""
        proto = self.protocol
        if self.now == 0 and not self.started:
            proto.start(0)
            for nid in self.node_ids:
                if nid not in self.faults.join_at:
                    self._start(nid)
        self.now += 1
        inbox: dict[int, list[bytes]] = {}
        for _src, dst, data in self.transport.deliver(self.now):
            if dst == COORDINATOR_ID:
                self._send(COORDINATOR_ID, proto.receive(data, self.now))
            elif dst in self.started and dst not in self.crashed:
                inbox.setdefault(dst, []).append(data)
        for nid, sends in self.host.exchange(inbox, self.now):
            self._send(nid, sends)
        self._send(COORDINATOR_ID, proto.tick(self.now))
        self._schedule()
        point = (proto.round, proto.epoch, proto.members)
        if not self.membership or self.membership[-1] != point:
            self.membership.append(point)

    def run(
        self,
        done: Callable[[], bool],
        stall_ticks: int,
        on_stall: Callable[[str], None] | None = None,
        max_ticks: int | None = None,
    ) -> RunTrace:
        """Tick until ``done()`` (or ``max_ticks``); ``on_stall`` hears when no round closed for
        ``stall_ticks`` ticks (every member crashed, say). Closes the host either way."""
        proto = self.protocol
        try:
            last_round, last_change = proto.round, self.now
            while not done() and (max_ticks is None or self.now < max_ticks):
                self.tick()
                if proto.round != last_round:
                    last_round, last_change = proto.round, self.now
                elif self.now - last_change > stall_ticks and on_stall is not None and not done():
                    on_stall(f"stalled: no round closed in {stall_ticks} ticks (members {proto.members})")
                    last_change = self.now
        finally:
            self.host.close()
        return self.trace()

    def trace(self) -> RunTrace:
        proto = self.protocol
        return RunTrace(
            ticks=self.now,
            rounds=proto.round,
            epoch=proto.epoch,
            members=proto.members,
            crashed=tuple(sorted(self.crashed)),
            joined_late=tuple(sorted(self.late)),
            left=tuple(sorted(self.left)),
            coordinator_stats=proto.stats,
            membership=list(self.membership),
        )


def run_apps(
    coordinator_app: CoordinatorApp,
    node_apps: Mapping[int, NodeApp],
    rounds: int,
    settings: SyncSettings = SyncSettings(),
    faults: FaultPlan = FaultPlan(),
    seed: int = 0,
    max_ticks: int = 100_000,
) -> tuple[RunTrace, Driver]:
    """Run any apps in this process until the coordinator has closed ``rounds`` rounds (the
    protocol's own tests drive toy apps with it). Returns the trace and the driver (its
    ``protocol`` and ``transport`` stay readable)."""
    if COORDINATOR_ID in node_apps:
        raise ValueError(f"node id {COORDINATOR_ID} is the coordinator's")
    protocol = CoordinatorProtocol(coordinator_app, settings)
    host = LocalNodes(lambda nid: (node_apps[nid], f"node{nid}", None), settings)
    driver = Driver(protocol, host, tuple(node_apps), FaultyTransport(faults, seed), faults)
    trace = driver.run(lambda: protocol.round >= rounds, stall_ticks=max_ticks, max_ticks=max_ticks)
    return trace, driver
