"""A deterministic, fault-injecting in-process transport.

Every send draws from one ``random.Random(seed)``: the message may be dropped, corrupted (one
byte flipped, which the CRC32C must catch), duplicated, delayed by up to ``max_delay`` extra
ticks, or reordered among the messages due in the same tick. Same seed and same sends => same
deliveries, and the :attr:`FaultyTransport.trace` records every decision so two runs can be
compared event by event. Node crashes and late joins are scheduled by round in the
:class:`FaultPlan` and carried out by :class:`catopt_dsl.sync.driver.Driver`.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import crc32c

#: (tick, event, src, dst, crc32c of the bytes) -- event in send/drop/dup/delay/corrupt/deliver
TraceEvent = tuple[int, str, int, int, int]


@dataclass(frozen=True)
class FaultPlan:
    """Probabilities per message, and what happens to nodes (node id -> coordinator round or ticks).

    ``crash_at``: the round a node's process dies (silently); ``restart_after``: ticks after its
    crash when a new process starts for it (a new boot: it rejoins with a new incarnation);
    ``join_at``: the round a node starts (a late joiner); ``partition_at`` / ``partition_ticks``:
    from that round, every frame to or from the node is lost, for that many ticks (for ever if
    absent) -- the node keeps running, a zombie of its admission once the partition heals;
    ``hang_at`` / ``hang_ticks``: the node's process stops answering (a hung process; on Ray the
    actor really blocks) and, in this process, resumes after that many ticks; ``lag``: every frame
    the node sends arrives that many ticks late (a persistently slow member).
    """

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    max_delay: int = 4
    corrupt: float = 0.0
    crash_at: Mapping[int, int] = field(default_factory=dict)
    join_at: Mapping[int, int] = field(default_factory=dict)
    restart_after: Mapping[int, int] = field(default_factory=dict)
    partition_at: Mapping[int, int] = field(default_factory=dict)
    partition_ticks: Mapping[int, int] = field(default_factory=dict)
    hang_at: Mapping[int, int] = field(default_factory=dict)
    hang_ticks: Mapping[int, int] = field(default_factory=dict)
    lag: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder", "delay", "corrupt"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if self.max_delay < 1:
            raise ValueError("max_delay must be >= 1")
        for name in ("crash_at", "join_at", "restart_after", "partition_at", "partition_ticks", "hang_at",
                     "hang_ticks", "lag"):
            for node, value in getattr(self, name).items():
                if int(node) < 1 or int(value) < 0:
                    raise ValueError(f"{name}: node ids are >= 1 and rounds/ticks >= 0")
        for node in self.restart_after:
            if node not in self.crash_at:
                raise ValueError(f"restart_after: node {node} has no crash_at to restart from")


class FaultyTransport:
    """Point-to-point message queue with seeded faults; one hop takes one tick."""

    def __init__(self, plan: FaultPlan = FaultPlan(), seed: int = 0):
        self.plan = plan
        self.rng = random.Random(seed)
        self._queue: list[tuple[int, float, int, int, int, bytes]] = []
        self._counter = 0
        self.trace: list[TraceEvent] = []

    def __len__(self) -> int:
        return len(self._queue)

    def _schedule(self, now: int, src: int, dst: int, data: bytes, event: str) -> None:
        p, rng = self.plan, self.rng
        due = now + 1
        if p.delay and rng.random() < p.delay:
            due += rng.randint(1, p.max_delay)
            event = "delay" if event == "send" else event
        self._counter += 1
        # Normal messages keep send order within a tick; a reordered one gets a random rank.
        key = float(self._counter)
        if p.reorder and rng.random() < p.reorder:
            key = rng.uniform(0.0, float(self._counter))
            event = "reorder" if event == "send" else event
        heapq.heappush(self._queue, (due, key, self._counter, src, dst, data))
        self.trace.append((now, event, src, dst, crc32c.crc32c(data)))

    def send(self, src: int, dst: int, data: bytes, now: int) -> None:
        """Queue ``data`` from ``src`` to ``dst``, applying the plan's faults."""
        p, rng = self.plan, self.rng
        if p.drop and rng.random() < p.drop:
            self.trace.append((now, "drop", src, dst, crc32c.crc32c(data)))
            return
        if p.corrupt and data and rng.random() < p.corrupt:
            i = rng.randrange(len(data))
            data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
            self.trace.append((now, "corrupt", src, dst, crc32c.crc32c(data)))
        self._schedule(now, src, dst, data, "send")
        if p.duplicate and rng.random() < p.duplicate:
            self._schedule(now, src, dst, data, "dup")

    def deliver(self, now: int) -> list[tuple[int, int, bytes]]:
        """Every message due at or before ``now``, in delivery order: ``(src, dst, bytes)``."""
        out: list[tuple[int, int, bytes]] = []
        while self._queue and self._queue[0][0] <= now:
            _due, _key, _c, src, dst, data = heapq.heappop(self._queue)
            self.trace.append((now, "deliver", src, dst, crc32c.crc32c(data)))
            out.append((src, dst, data))
        return out
