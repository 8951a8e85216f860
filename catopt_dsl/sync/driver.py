"""The one event loop that runs a coordinator and its nodes over a transport, whatever the apps.

``Driver.run`` advances time in ticks: the transport delivers what is due (frames to the
coordinator are handled at once; frames to nodes are handed to the node host), every live node
ticks, the coordinator ticks, then the fault schedule applies (crashes, restarts, late joins,
partitions, hangs, graceful Leaves at the coordinator round they are scheduled for). The loop is
single-threaded and ordered (deliveries in transport order, nodes in id order), so a run is a
function of its inputs alone.

A node host may also report failures of its own (a Ray actor that died or stopped answering
within its deadline): the driver treats them as crashes -- the node goes silent, and the
coordinator drops it after ``member_timeout`` -- and restarts the node when the host can replace
it (a new process, a new boot stamp: it rejoins with a new incarnation).

The solver's distributed ADMM (``run.py``), the Ray backend (a :class:`NodeHost` whose nodes are
actors) and the protocol's own fault tests (toy apps, :func:`run_apps`) all use this loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from catopt_dsl.sync.protocol import (
    COORDINATOR_ID,
    CoordinatorApp,
    CoordinatorProtocol,
    FrameAuth,
    MembershipEvent,
    NodeApp,
    NodeProtocol,
    ProtocolStats,
    Send,
    SyncSettings,
)
from catopt_dsl.sync.report import RoundMetric
from catopt_dsl.sync.transport import FaultPlan, FaultyTransport

log = logging.getLogger("catopt_dsl.sync")

__all__ = ["Driver", "LocalNodes", "NodeHost", "RunTrace", "Transport", "run_apps"]


class Transport(Protocol):
    """What the driver needs of a transport (``FaultyTransport`` is one)."""

    def send(self, src: int, dst: int, data: bytes, now: int) -> None: ...

    def deliver(self, now: int) -> list[tuple[int, int, bytes]]: ...


class NodeHost(Protocol):
    """Where the nodes run: in this process (:class:`LocalNodes`) or as Ray actors.

    ``start`` starts a node's process -- again after a crash, as a new process with a higher boot
    stamp (so it rejoins with a new incarnation); ``hang`` makes it stop answering for ``ticks``;
    ``failures`` returns the nodes that died on their own since the last call (with a reason), and
    ``can_restart`` whether such a node may be replaced.
    """

    def start(self, node_id: int, now: int) -> list[Send]: ...

    def leave(self, node_id: int, now: int) -> list[Send]: ...

    def crash(self, node_id: int) -> None: ...

    def hang(self, node_id: int, ticks: int | None, now: int) -> None: ...

    def exchange(self, inbox: Mapping[int, list[bytes]], now: int) -> list[tuple[int, list[Send]]]:
        """Hand each node its frames for this tick, then tick every live node; return their sends."""
        ...

    def failures(self) -> list[tuple[int, str]]: ...

    def can_restart(self, node_id: int) -> bool: ...

    def close(self) -> None: ...


#: node id -> (its app, a short label for its Join, its frame signer or None)
AppFactory = Callable[[int], tuple[NodeApp, str, "FrameAuth | None"]]


class LocalNodes:
    """Runs each node's :class:`NodeProtocol` and app in this process.

    Every start of a node is a new process for the protocol: a fresh app from ``make_app`` and a
    boot stamp one above the previous one (1 for the first start).
    """

    def __init__(self, make_app: AppFactory, settings: SyncSettings) -> None:
        self.make_app = make_app
        self.settings = settings
        self.nodes: dict[int, NodeProtocol] = {}
        self.apps: dict[int, NodeApp] = {}
        self.crashed: set[int] = set()
        self.boots: dict[int, int] = {}
        self.hung_until: dict[int, int | None] = {}

    def start(self, node_id: int, now: int) -> list[Send]:
        app, label, auth = self.make_app(node_id)
        boot = self.boots.get(node_id, 0) + 1
        self.boots[node_id] = boot
        node = NodeProtocol(node_id, label, app, self.settings, auth=auth, boot=boot)
        self.apps[node_id], self.nodes[node_id] = app, node
        self.crashed.discard(node_id)
        self.hung_until.pop(node_id, None)
        return node.start(now)

    def leave(self, node_id: int, now: int) -> list[Send]:
        return self.nodes[node_id].leave(now)

    def crash(self, node_id: int) -> None:
        self.crashed.add(node_id)

    def hang(self, node_id: int, ticks: int | None, now: int) -> None:
        """The node stops: it handles nothing (what is sent to it meanwhile is lost) until
        ``now + ticks``, then goes on where it stopped (its admission may be fenced by then)."""
        self.hung_until[node_id] = None if ticks is None else now + ticks

    def failures(self) -> list[tuple[int, str]]:
        return []

    def can_restart(self, node_id: int) -> bool:
        return False

    def exchange(self, inbox: Mapping[int, list[bytes]], now: int) -> list[tuple[int, list[Send]]]:
        out: list[tuple[int, list[Send]]] = []
        for nid in sorted(self.nodes):
            if nid in self.crashed:
                continue
            if nid in self.hung_until:
                until = self.hung_until[nid]
                if until is None or now < until:
                    continue
                del self.hung_until[nid]
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
    crashed: tuple[int, ...] = ()  # crashed and not running again at the end
    joined_late: tuple[int, ...] = ()
    left: tuple[int, ...] = ()
    restarted: tuple[int, ...] = ()  # nodes started again as a new process
    partitioned: tuple[int, ...] = ()
    hung: tuple[int, ...] = ()
    #: (tick, node, reason) for every failure a node host reported (a dead or hung Ray actor)
    failures: list[tuple[int, int, str]] = field(default_factory=list)
    coordinator_stats: ProtocolStats = field(default_factory=ProtocolStats)
    #: (round, epoch, members) each time the round or the epoch moved
    membership: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)
    events: list[MembershipEvent] = field(default_factory=list)
    incarnations: dict[int, int] = field(default_factory=dict)
    round_metrics: list[RoundMetric] = field(default_factory=list)
    lost_frames: int = 0  # frames lost to partitions


class Driver:
    """Runs ``protocol`` and the nodes of ``host`` (ids ``node_ids``) over ``transport``.

    ``faults`` schedules crashes, restarts, late joins, partitions, hangs and lag (see
    :class:`~catopt_dsl.sync.transport.FaultPlan`); ``leave_at`` schedules graceful Leaves (node id
    -> coordinator round). ``restart_delay``: ticks before a node the host reported dead is
    started again (when the host can replace it).
    """

    def __init__(
        self,
        protocol: CoordinatorProtocol,
        host: NodeHost,
        node_ids: tuple[int, ...],
        transport: Transport,
        faults: FaultPlan = FaultPlan(),
        leave_at: Mapping[int, int] | None = None,
        restart_delay: int = 1,
    ) -> None:
        self.protocol = protocol
        self.host = host
        self.node_ids = tuple(sorted(node_ids))
        self.transport = transport
        self.faults = faults
        self.leave_at = dict(leave_at or {})
        self.restart_delay = max(0, int(restart_delay))
        self.now = 0
        self.started: set[int] = set()
        self.crashed: set[int] = set()
        self.left: set[int] = set()
        self.late: set[int] = set()
        self.restarted: set[int] = set()
        self.membership: list[tuple[int, int, tuple[int, ...]]] = []
        self._crashed_at: dict[int, int] = {}
        self._fault_crashes: set[int] = set()  # crash_at applied (each at most once)
        self._restart_at: dict[int, int] = {}  # node -> tick its new process starts
        self._partition: dict[int, int | None] = {}  # node -> tick the partition heals (None: never)
        self._partitioned_ever: set[int] = set()
        self._hung: set[int] = set()
        self.failures: list[tuple[int, int, str]] = []
        self.lost_frames = 0
        self.round_metrics: list[RoundMetric] = []
        self._round_wall = time.perf_counter()
        self._round_retx = 0

    def _cut_off(self, nid: int) -> bool:
        if nid not in self._partition:
            return False
        until = self._partition[nid]
        if until is not None and self.now >= until:
            del self._partition[nid]
            log.info("node %d: partition healed", nid, extra={"event": "partition_healed", "node": nid, "tick": self.now})
            return False
        return True

    def _send(self, src: int, sends: list[Send]) -> None:
        lag = self.faults.lag.get(src, 0) if src != COORDINATOR_ID else 0
        for dst, data in sends:
            if self._cut_off(src) or (dst != COORDINATOR_ID and self._cut_off(dst)):
                self.lost_frames += 1
                continue
            self.transport.send(src, dst, data, self.now + lag)

    def _start(self, nid: int) -> None:
        self.started.add(nid)
        self._send(nid, self.host.start(nid, self.now))

    def _crash(self, nid: int, reason: str) -> None:
        self.crashed.add(nid)  # it stops silently; what it already sent still arrives
        self._crashed_at[nid] = self.now
        log.info("node %d crashed (%s)", nid, reason, extra={"event": "node_crashed", "node": nid, "reason": reason,
                                                             "tick": self.now})

    def _schedule(self) -> None:
        rnd = self.protocol.round
        f = self.faults
        for nid in sorted(f.crash_at):
            if nid in self.started and nid not in self._fault_crashes and rnd >= f.crash_at[nid]:
                self._fault_crashes.add(nid)
                self._crash(nid, "crash_at")
                self.host.crash(nid)
                if nid in f.restart_after:
                    self._restart_at[nid] = self.now + int(f.restart_after[nid])
        for nid, at in sorted(self._restart_at.items()):
            if self.now >= at:
                del self._restart_at[nid]
                self.crashed.discard(nid)
                self.restarted.add(nid)
                log.info("node %d restarted", nid, extra={"event": "node_restarted", "node": nid, "tick": self.now})
                self._start(nid)
        for nid in sorted(f.partition_at):
            if nid in self.started and nid not in self._partitioned_ever and rnd >= f.partition_at[nid]:
                self._partitioned_ever.add(nid)
                ticks = f.partition_ticks.get(nid)
                self._partition[nid] = None if ticks is None else self.now + int(ticks)
                log.info("node %d partitioned", nid, extra={"event": "partitioned", "node": nid, "tick": self.now})
        for nid in sorted(f.hang_at):
            if nid in self.started and nid not in self._hung and nid not in self.crashed and rnd >= f.hang_at[nid]:
                self._hung.add(nid)
                ticks = f.hang_ticks.get(nid)
                self.host.hang(nid, None if ticks is None else int(ticks), self.now)
                log.info("node %d hangs", nid, extra={"event": "hung", "node": nid, "tick": self.now})
        for nid in sorted(f.join_at):
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
        round_before = proto.round
        for _src, dst, data in self.transport.deliver(self.now):
            if dst == COORDINATOR_ID:
                self._send(COORDINATOR_ID, proto.receive(data, self.now))
            elif dst in self.started and dst not in self.crashed:
                if self._cut_off(dst):
                    self.lost_frames += 1
                    continue
                inbox.setdefault(dst, []).append(data)
        for nid, sends in self.host.exchange(inbox, self.now):
            self._send(nid, sends)
        for nid, reason in self.host.failures():
            self.failures.append((self.now, nid, reason))
            if nid not in self.crashed:
                self._crash(nid, reason)
            if nid not in self._restart_at and nid not in self.left and self.host.can_restart(nid):
                self._restart_at[nid] = self.now + self.restart_delay
        self._send(COORDINATOR_ID, proto.tick(self.now))
        self._schedule()
        if proto.round != round_before:
            self._record_round(round_before)
        point = (proto.round, proto.epoch, proto.members)
        if not self.membership or self.membership[-1] != point:
            self.membership.append(point)

    def _record_round(self, closed: int) -> None:
        proto = self.protocol
        wall = time.perf_counter()
        stats = proto.stats
        self.round_metrics.append(
            RoundMetric(
                round=closed,
                tick=self.now,
                latency_s=wall - self._round_wall,
                retransmits=stats.retransmits - self._round_retx,
                epoch=proto.epoch,
                members=len(proto.members),
                dropped=stats.dropped_members,
                fenced=stats.fenced,
            )
        )
        self._round_wall, self._round_retx = wall, stats.retransmits

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
            restarted=tuple(sorted(self.restarted)),
            partitioned=tuple(sorted(self._partitioned_ever)),
            hung=tuple(sorted(self._hung)),
            failures=list(self.failures),
            coordinator_stats=proto.stats,
            membership=list(self.membership),
            events=list(proto.events),
            incarnations=proto.incarnations,
            round_metrics=list(self.round_metrics),
            lost_frames=self.lost_frames,
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
    protocol = CoordinatorProtocol(coordinator_app, settings, expected=tuple(node_apps))
    host = LocalNodes(lambda nid: (node_apps[nid], f"node{nid}", None), settings)
    driver = Driver(protocol, host, tuple(node_apps), FaultyTransport(faults, seed), faults)
    trace = driver.run(lambda: protocol.round >= rounds, stall_ticks=max_ticks, max_ticks=max_ticks)
    return trace, driver
