"""Delta-sync protocol state machines: one :class:`CoordinatorProtocol`, many :class:`NodeProtocol`.

Both are transport-agnostic and clock-driven: ``receive(bytes, now)`` and ``tick(now)`` return the
frames to send as ``(destination, bytes)`` pairs; ``now`` is a logical tick count, so a run is a
pure function of its inputs (see :mod:`catopt_dsl.sync.transport` for the deterministic fault
injector and :mod:`catopt_dsl.sync.driver` for the event loop).

Guarantees (``docs/protocol.md`` has the full rules):

* **Exactly-once, in order** (Kafka's idempotent producer): a member's Delta/Leave stream is
  numbered 1, 2, ... per admission; ``(sender, joined epoch, seq)`` identifies a message. A
  duplicate (seq below the next expected) is acknowledged again and never re-applied; a gap
  (seq above it) is never applied and triggers a resync Snapshot; a node keeps at most one
  unacknowledged message in flight and retransmits the *same bytes* until acknowledged.
* **Fencing**: every admission (join, rejoin, resync) bumps the membership epoch and records it as
  the member's ``joined_epoch``; a message whose epoch is below its sender's ``joined_epoch`` comes
  from an earlier incarnation and is never applied, nor is anything from a non-member.
* **Incarnations** (Kafka's InitProducerId): the coordinator assigns every admitted process an
  incarnation above any its node id had; a Join carries the process's ``boot`` stamp (growing with
  every start), so a restarted node is admitted at once, replacing its dead incarnation, while a
  Join from an older process (a zombie) is fenced.
* **Bounded staleness, partial barriers** (asynchronous ADMM, Zhang & Kwok 2014): round ``r``
  closes once a fraction ``quorum`` of members answered round ``r`` (or ``round_timeout`` ticks
  passed and at least one did), *and* no member's newest contribution is more than
  ``max_staleness`` rounds old; a straggler beyond that either holds the round (``block``) or is
  dropped (``drop``). ``quorum=1, max_staleness=0`` is the synchronous reference.
* **Membership**: join, leave, drop and resync bump the epoch; every round the application is told
  the current member set, and ``member_left`` releases a member's share. Round 0 waits for the
  ``expected`` members (at most ``join_timeout`` ticks), so a lost Join cannot change the iterates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Union, runtime_checkable

import numpy as np

from catopt_dsl.sync.frame import DEFAULT_MAX_PAYLOAD, ZERO_HASH
from catopt_dsl.sync.messages import (
    Ack,
    AckStatus,
    Broadcast,
    Delta,
    Envelope,
    Join,
    Leave,
    Message,
    Snapshot,
    SnapshotRequest,
    decode_message,
    encode_message,
)
from catopt_dsl.wire.errors import WireError

#: the coordinator's sender id (nodes use ids >= 1)
COORDINATOR_ID = 0

log = logging.getLogger("catopt_dsl.sync")
log.addHandler(logging.NullHandler())  # a library logs; the application decides where it goes

Send = tuple[int, bytes]  # (destination id, frame bytes)


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncSettings:
    """Protocol knobs; the defaults are the synchronous reference mode.

    Times are logical ticks (one tick = one transport hop in the in-process driver).
    """

    quorum: float = 1.0  # S: fraction of members that must answer a round before it closes
    max_staleness: int = 0  # tau: the oldest contribution (in rounds) a closing round may use
    round_timeout: int | None = None  # close with < quorum after this many ticks (None: never)
    stale_policy: str = "block"  # "block": hold the round for stragglers; "drop": drop them
    retransmit_after: int = 4  # ticks without an answer before the same bytes are resent
    member_timeout: int = 60  # ticks a member the round waits on may stay silent before it is dropped
    max_payload: int = DEFAULT_MAX_PAYLOAD  # cap on a received frame's declared payload
    spec_hash: bytes = ZERO_HASH  # frames for another plan are rejected
    join_timeout: int | None = None  # ticks round 0 waits for the expected members (None: member_timeout)
    rejoin_timeout: int | None = None  # ticks a lost member has to come back (None: member_timeout)

    def __post_init__(self) -> None:
        if not 0.0 < self.quorum <= 1.0:
            raise ValueError("quorum must be in (0, 1]")
        if self.max_staleness < 0:
            raise ValueError("max_staleness must be >= 0")
        if self.quorum < 1.0 and self.max_staleness == 0:
            # Every member not in the quorum is one round stale at once: `block` would wait for it
            # (the synchronous protocol, slower) and `drop` would drop it every round.
            raise ValueError("quorum < 1 needs max_staleness >= 1 (with staleness 0 every round waits for everyone)")
        for name in ("join_timeout", "rejoin_timeout"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 tick or None")
        if self.stale_policy not in ("block", "drop"):
            raise ValueError("stale_policy must be 'block' or 'drop'")
        if self.retransmit_after < 1 or self.member_timeout < 1:
            raise ValueError("timeouts must be >= 1 tick")
        if self.round_timeout is not None and self.round_timeout < 1:
            raise ValueError("round_timeout must be >= 1 tick or None")
        if len(self.spec_hash) != 32:
            raise ValueError("spec_hash must be 32 raw bytes")

    @property
    def asynchronous(self) -> bool:
        """Whether a round may close without every member's answer to it (asynchronous ADMM)."""
        return self.quorum < 1.0 or self.max_staleness > 0 or self.round_timeout is not None

    @property
    def join_ticks(self) -> int:
        return self.member_timeout if self.join_timeout is None else self.join_timeout

    @property
    def rejoin_ticks(self) -> int:
        return self.member_timeout if self.rejoin_timeout is None else self.rejoin_timeout


# ---------------------------------------------------------------------------------------------
# Application interfaces (``sync/apps.py`` wraps them around LocalWorker / Coordinator)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BroadcastView:
    """What a node's application sees of a Broadcast (or of the Snapshot it restarted from)."""

    round: int
    epoch: int
    z: Mapping[str, np.ndarray]
    rho: float
    members: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class NodeOutput:
    """A node application's answer to one broadcast."""

    contributions: Mapping[str, np.ndarray]
    residuals: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class NodeApp(Protocol):
    """Wrapped by :class:`NodeProtocol`. May also define ``restore(state: Mapping[str, ndarray])``
    to reset itself from a Snapshot's node state."""

    def step(self, view: BroadcastView) -> NodeOutput | Mapping[str, np.ndarray]: ...


@dataclass(frozen=True, eq=False)
class Contribution:
    """One applied Delta as the coordinator's application sees it."""

    member: int
    round: int  # the broadcast round it answers
    seq: int
    arrays: Mapping[str, np.ndarray]
    residuals: Mapping[str, float]


@dataclass(frozen=True, eq=False)
class RoundInput:
    """Everything the coordinator's application needs to close round ``round``."""

    round: int
    epoch: int
    members: tuple[int, ...]  # current members, sorted
    new: Mapping[int, tuple[Contribution, ...]]  # applied since the last update, per member, in seq order
    latest: Mapping[int, Contribution]  # each member's newest contribution (none older than tau)
    now: int = 0  # the tick the round closed at

    def age(self, member: int) -> int | None:
        """Rounds since ``member``'s newest contribution (None if it has none yet)."""
        c = self.latest.get(member)
        return None if c is None else self.round - c.round


@dataclass(frozen=True, eq=False)
class BroadcastState:
    """The coordinator application's output: the next z (named arrays) and rho."""

    z: Mapping[str, np.ndarray]
    rho: float = 1.0


@runtime_checkable
class CoordinatorApp(Protocol):
    """Wrapped by :class:`CoordinatorProtocol`. Optional hooks: ``member_joined(member, name)``,
    ``member_removed(member, reason, now)`` (reason ``left``, ``dropped`` or ``replaced``, before
    ``member_left``), ``member_left(member)`` (release its share), ``snapshot_for(member) ->
    Mapping[str, ndarray]`` (node state handed to a (re)joining node)."""

    def initial(self) -> BroadcastState: ...

    def update(self, inp: RoundInput) -> BroadcastState: ...


@dataclass
class ProtocolStats:
    """Counters, for tests and monitoring."""

    applied: int = 0
    duplicates: int = 0
    fenced: int = 0
    gaps: int = 0
    rejected: int = 0  # undecodable frames, wrong spec hash, impossible header values, refused by auth
    undecodable: int = 0  # frames dropped because they do not decode (also counted in rejected / errors)
    non_member: int = 0
    retransmits: int = 0
    dropped_members: int = 0
    rounds: int = 0
    restarts: int = 0  # admissions of a new process for a node id that had an incarnation before
    errors: dict[str, int] = field(default_factory=dict)

    def reject(self, why: str) -> None:
        self.rejected += 1
        self.errors[why] = self.errors.get(why, 0) + 1


# ---------------------------------------------------------------------------------------------
# Authentication seam (``catopt_dsl.sync.auth`` implements it; the protocol only calls it)
# ---------------------------------------------------------------------------------------------


class AuthError(Exception):
    """A frame the authentication layer refuses; ``reason`` is the counter it is filed under."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


@runtime_checkable
class FrameAuth(Protocol):
    """Optional per-endpoint authentication: every frame sent goes through ``seal`` (``dst`` is the
    one recipient of a unicast frame, None for a broadcast); every frame received through ``open``
    (before decoding: returns the inner frame and a token) and, once decoded, ``admit(token,
    message)``. Both raise :class:`AuthError` to refuse the frame, which is then counted under its
    reason and never reaches the protocol state."""

    def seal(self, frame: bytes, dst: int | None = None) -> bytes: ...

    def open(self, data: bytes) -> tuple[bytes, Any]: ...

    def admit(self, token: Any, msg: Message) -> None: ...


def _decode(data: bytes, settings: SyncSettings, stats: ProtocolStats, auth: FrameAuth | None = None) -> Message | None:
    token: Any = None
    if auth is not None:
        try:
            data, token = auth.open(data)
        except AuthError as exc:
            stats.reject(exc.reason)
            return None
    try:
        msg = decode_message(data, max_payload=settings.max_payload)
    except WireError as exc:
        stats.undecodable += 1
        stats.reject(type(exc).__name__)
        return None
    except Exception:
        # The decoders raise only WireError (fuzzed in tests/wire and tests/conformance); should one
        # ever raise anything else, the frame is still dropped and counted, under its own name.
        stats.undecodable += 1
        stats.reject("DecoderFault")
        return None
    if msg.env.spec_hash != settings.spec_hash:
        stats.reject("SpecHashMismatch")
        return None
    if auth is not None:
        try:
            auth.admit(token, msg)
        except AuthError as exc:
            stats.reject(exc.reason)
            return None
    return msg


# ---------------------------------------------------------------------------------------------
# Coordinator
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipEvent:
    """One membership change the coordinator made (for the run report and the logs)."""

    now: int
    round: int
    epoch: int  # the epoch after the change
    kind: str  # joined | restarted | rejoined | left | dropped | replaced | resync
    member: int
    incarnation: int


@dataclass
class _Member:
    id: int
    name: str
    incarnation: int
    joined_epoch: int
    last_round: int  # staleness base: round of its newest contribution, or the round it was admitted in
    last_heard: int
    answered: int = -1  # newest round it answered (quorum counts only real answers)
    next_seq: int = 1
    latest: Contribution | None = None
    new: list[Contribution] = field(default_factory=list)
    last_bcast_sent: int = -(10**9)


class CoordinatorProtocol:
    """The coordinator side: membership, dedup/fencing, round closing, broadcasts."""

    def __init__(
        self,
        app: CoordinatorApp,
        settings: SyncSettings = SyncSettings(),
        node_id: int = COORDINATOR_ID,
        auth: FrameAuth | None = None,
        expected: Iterable[int] = (),
    ):
        self.app = app
        self.settings = settings
        self.id = node_id
        self.auth = auth
        #: the members round 0 waits for (at most ``settings.join_ticks`` ticks)
        self.expected = frozenset(int(m) for m in expected)
        self.stats = ProtocolStats()
        self.epoch = 0
        self.round = 0
        self._seq = 0
        self._members: dict[int, _Member] = {}
        self._boot: dict[int, int] = {}  # id -> newest boot stamp seen in a Join
        self._inc: dict[int, int] = {}  # id -> newest incarnation assigned
        self.events: list[MembershipEvent] = []
        self._started_at = 0
        self._opened_at = 0
        self._state: BroadcastState | None = None
        self._bcast: bytes = b""
        self._now = 0
        self._reply: list[Send] = []
        #: (member, joined_epoch, seq, round) of every applied Delta, in application order
        self.applied_log: list[tuple[int, int, int, int]] = []

    # -- public views ------------------------------------------------------------------------
    @property
    def members(self) -> tuple[int, ...]:
        return tuple(sorted(self._members))

    @property
    def state(self) -> BroadcastState:
        assert self._state is not None, "start() first"
        return self._state

    @property
    def seq(self) -> int:
        """The sequence number of the coordinator's newest frame."""
        return self._seq

    @property
    def incarnations(self) -> dict[int, int]:
        """Node id -> the newest incarnation assigned to it (members and former members)."""
        return dict(sorted(self._inc.items()))

    def start(self, now: int) -> list[Send]:
        """Open round 0 with the application's initial state (no members yet)."""
        self._state = self.app.initial()
        self._opened_at = self._started_at = now
        self._encode_broadcast()
        return []

    def restore(self, epoch: int, seq: int, incarnations: Mapping[int, int]) -> None:
        """Continue a checkpointed coordinator: epochs, frame numbers and incarnations go on from
        the checkpoint's, so nothing a process of the interrupted run sent can be applied."""
        self.epoch = max(self.epoch, int(epoch))
        self._seq = max(self._seq, int(seq))
        for m, inc in incarnations.items():
            self._inc[int(m)] = max(self._inc.get(int(m), 0), int(inc))

    def _event(self, kind: str, m: _Member) -> None:
        ev = MembershipEvent(self._now, self.round, self.epoch, kind, m.id, m.incarnation)
        self.events.append(ev)
        log.info(
            "member %d (%s) %s: incarnation %d, epoch %d, round %d",
            m.id, m.name, kind, m.incarnation, self.epoch, self.round,
            extra={"event": f"member_{kind}", "member": m.id, "label": m.name, "incarnation": m.incarnation,
                   "epoch": self.epoch, "round": self.round, "tick": self._now},
        )

    # -- helpers -----------------------------------------------------------------------------
    def _env(self) -> Envelope:
        self._seq += 1
        return Envelope(self.id, self.epoch, self._seq, self.round, self.settings.spec_hash)

    def _encode(self, msg: Message, dst: int | None = None) -> bytes:
        data = encode_message(msg)
        return data if self.auth is None else self.auth.seal(data, dst)

    def _encode_broadcast(self) -> None:
        st = self.state
        self._bcast = self._encode(Broadcast(self._env(), st.z, st.rho, self.members))

    def _hook(self, name: str, *args: Any) -> Any:
        fn = getattr(self.app, name, None)
        return fn(*args) if fn is not None else None

    def _snapshot(self, m: _Member) -> Send:
        st = self.state
        node_state = self._hook("snapshot_for", m.id) or {}
        snap = Snapshot(self._env(), st.z, st.rho, self.members, node_state, m.next_seq, m.joined_epoch, m.incarnation)
        m.last_bcast_sent = self._now
        return (m.id, self._encode(snap, m.id))

    def _ack(self, m_id: int, seq: int, joined_epoch: int, status: AckStatus) -> Send:
        return (m_id, self._encode(Ack(self._env(), seq, joined_epoch, status), m_id))

    def _admit(self, m: _Member) -> None:
        """(Re)admission: a new epoch fences everything the member sent before it."""
        self.epoch += 1
        m.joined_epoch = self.epoch
        m.next_seq = 1
        m.last_round = self.round
        m.last_heard = self._now
        self._encode_broadcast()  # the member list changed: laggards must see the current one

    def _remove(self, m_id: int, reason: str) -> None:
        """``reason``: ``left`` (a Leave), ``dropped`` (silent or stale), ``replaced`` (restarted)."""
        m = self._members.pop(m_id)
        self.epoch += 1
        if reason == "dropped":
            self.stats.dropped_members += 1
        self._event(reason, m)
        self._hook("member_removed", m_id, reason, self._now)
        self._hook("member_left", m_id)
        self._encode_broadcast()

    # -- input -------------------------------------------------------------------------------
    def receive(self, data: bytes, now: int) -> list[Send]:
        self._now = now
        msg = _decode(data, self.settings, self.stats, self.auth)
        if msg is None:
            return []
        self._reply = []
        out: list[Send] = []
        if isinstance(msg, Join):
            out += self._on_join(msg)
        elif isinstance(msg, (Delta, Leave)):
            out += self._on_stream(msg)
        elif isinstance(msg, SnapshotRequest):
            out += self._on_snapshot_request(msg)
        else:  # Broadcast / Ack / Snapshot flow coordinator -> node only
            self.stats.reject("UnexpectedType")
        out += self._reply
        out += self._maybe_close(now)
        return out

    def _on_join(self, msg: Join) -> list[Send]:
        """InitProducerId: assign an incarnation, fence older processes (docs/protocol.md §5)."""
        sid, hint, boot = msg.env.sender, msg.incarnation, msg.boot
        if sid == self.id:
            self.stats.reject("CoordinatorId")
            return []
        last_boot = self._boot.get(sid)
        assigned = self._inc.get(sid, 0)
        m = self._members.get(sid)
        if last_boot is not None and boot < last_boot:
            self.stats.fenced += 1  # a Join from a process older than the newest one: a zombie
            return []
        if last_boot is not None and boot == last_boot:
            if m is not None and hint < m.incarnation:
                # a retry (or a network duplicate) of the request that got this incarnation
                self.stats.duplicates += 1
                m.last_heard = self._now
                return [self._snapshot(m)]
            if m is None and hint < assigned:
                self.stats.fenced += 1  # a stale copy of an earlier request of this process
                return []
            kind = "rejoined"  # the same process, dropped (or believing so): a new incarnation
        else:
            kind = "restarted" if sid in self._inc else "joined"
        self._boot[sid] = boot
        if m is not None:
            self._remove(sid, "replaced")  # its previous incarnation is dead (or fenced from now on)
        inc = max(assigned, hint) + 1
        self._inc[sid] = inc
        if kind == "restarted":
            self.stats.restarts += 1
        m = _Member(sid, msg.name, inc, 0, self.round, self._now)
        self._members[sid] = m
        self._admit(m)
        self._event(kind, m)
        self._hook("member_joined", sid, msg.name)
        return [self._snapshot(m)]

    def _fence(self, msg: Message) -> _Member | None:
        m = self._members.get(msg.env.sender)
        if m is None:
            self.stats.non_member += 1
            # Tell it: the current broadcast does not list it, so a live node rejoins.
            self._reply.append((msg.env.sender, self._bcast))
            return None
        if msg.env.epoch < m.joined_epoch:
            self.stats.fenced += 1
            log.debug(
                "fenced a frame of member %d from epoch %d (admitted at %d)", m.id, msg.env.epoch, m.joined_epoch,
                extra={"event": "fenced", "member": m.id, "epoch": msg.env.epoch, "joined_epoch": m.joined_epoch},
            )
            return None
        if msg.env.epoch > self.epoch:
            self.stats.reject("FutureEpoch")
            return None
        m.last_heard = self._now
        return m

    def _on_stream(self, msg: Delta | Leave) -> list[Send]:
        sid, seq = msg.env.sender, msg.env.seq
        if isinstance(msg, Leave) and sid not in self._members:
            return [self._ack(sid, seq, 0, AckStatus.LEFT)]  # leaving twice is fine
        m = self._fence(msg)
        if m is None:
            return []
        if seq < m.next_seq:
            self.stats.duplicates += 1
            return [self._ack(sid, seq, m.joined_epoch, AckStatus.DUPLICATE)]
        if seq > m.next_seq:
            # Messages were lost that the node believes delivered: it lost its place. Re-admit it
            # (fencing whatever else it has in flight) and hand it the authoritative state.
            self.stats.gaps += 1
            self._admit(m)
            return [self._snapshot(m)]
        m.next_seq += 1
        if isinstance(msg, Leave):
            joined = m.joined_epoch
            self._remove(sid, "left")
            return [self._ack(sid, seq, joined, AckStatus.LEFT)]
        if msg.env.round > self.round:
            self.stats.reject("FutureRound")  # impossible from a correct node; consume the seq
            return [self._ack(sid, seq, m.joined_epoch, AckStatus.APPLIED)]
        c = Contribution(sid, msg.env.round, seq, dict(msg.contributions), dict(msg.residuals))
        m.new.append(c)
        if m.latest is None or c.round >= m.latest.round:
            m.latest = c
        m.last_round = max(m.last_round, c.round)
        m.answered = max(m.answered, c.round)
        self.stats.applied += 1
        self.applied_log.append((sid, m.joined_epoch, seq, c.round))
        return [self._ack(sid, seq, m.joined_epoch, AckStatus.APPLIED)]

    def _on_snapshot_request(self, msg: SnapshotRequest) -> list[Send]:
        m = self._fence(msg)
        if m is None or msg.incarnation != m.incarnation:
            return []
        self.stats.gaps += 1
        self._admit(m)
        self._event("resync", m)
        return [self._snapshot(m)]

    # -- time --------------------------------------------------------------------------------
    def tick(self, now: int) -> list[Send]:
        """Drop silent members the round waits on, resend the broadcast to laggards, close rounds."""
        self._now = now
        s = self.settings
        for m in [self._members[k] for k in sorted(self._members)]:
            waiting = m.answered < self.round
            if waiting and now - max(m.last_heard, self._opened_at) >= s.member_timeout:
                self._remove(m.id, "dropped")
        out = self._maybe_close(now)
        for k in sorted(self._members):
            m = self._members[k]
            if m.answered < self.round and now - m.last_bcast_sent >= s.retransmit_after:
                m.last_bcast_sent = now
                self.stats.retransmits += 1
                out.append((m.id, self._bcast))
        return out

    def _maybe_close(self, now: int) -> list[Send]:
        s = self.settings
        out: list[Send] = []
        if self.round == 0 and not self.expected <= set(self._members) and now - self._started_at < s.join_ticks:
            return out  # round 0 waits for every expected member (a lost Join must not change the iterates)
        while self._members:
            members = [self._members[k] for k in sorted(self._members)]
            fresh = sum(1 for m in members if m.answered >= self.round)
            need = math.ceil(s.quorum * len(members) - 1e-9)
            timed_out = s.round_timeout is not None and now - self._opened_at >= s.round_timeout and fresh >= 1
            if fresh < need and not timed_out:
                return out
            stale = [m for m in members if self.round - m.last_round > s.max_staleness]
            if stale:
                if s.stale_policy == "block":
                    return out
                for m in stale:
                    self._remove(m.id, "dropped")
                continue  # re-evaluate against the smaller membership
            out += self._close(now, members)
            # loop: with S < 1 the new round can only close once fresh answers arrive
        return out

    def _close(self, now: int, members: list[_Member]) -> list[Send]:
        inp = RoundInput(
            round=self.round,
            epoch=self.epoch,
            members=tuple(m.id for m in members),
            new={m.id: tuple(m.new) for m in members if m.new},
            latest={m.id: m.latest for m in members if m.latest is not None},
            now=now,
        )
        self._state = self.app.update(inp)
        for m in members:
            m.new.clear()
        self.round += 1
        self.stats.rounds += 1
        self._opened_at = now
        self._encode_broadcast()
        out: list[Send] = []
        for m in members:
            m.last_bcast_sent = now
            out.append((m.id, self._bcast))
        return out


# ---------------------------------------------------------------------------------------------
# Node
# ---------------------------------------------------------------------------------------------


@dataclass
class _InFlight:
    seq: int
    data: bytes
    sent_at: int
    kind: str  # "delta" | "leave"


class NodeProtocol:
    """A member's side: join, answer broadcasts through the app, retransmit, resync, leave."""

    def __init__(
        self,
        node_id: int,
        name: str,
        app: NodeApp,
        settings: SyncSettings = SyncSettings(),
        coordinator: int = COORDINATOR_ID,
        incarnation: int = 0,
        auth: FrameAuth | None = None,
        boot: int = 0,
    ):
        """``incarnation``: the newest one this node held (0 for a fresh process; a node that kept
        it may pass it on); ``boot``: this process's start stamp (grows with every start)."""
        if node_id == coordinator:
            raise ValueError("a node cannot use the coordinator's id")
        if boot < 0 or incarnation < 0:
            raise ValueError("boot and incarnation must be >= 0")
        self.id = node_id
        self.boot = boot
        self.auth = auth
        self.name = name
        self.app = app
        self.settings = settings
        self.coordinator = coordinator
        self.incarnation = incarnation
        self.stats = ProtocolStats()
        self.status = "idle"  # idle -> joining -> member -> (leaving -> left) ; resync: member awaiting
        self.epoch = 0
        self.joined_epoch = -1
        self.last_round = -1
        self._next_seq = 1
        self._in_flight: _InFlight | None = None
        self._pending: BroadcastView | None = None
        self._ctrl: bytes | None = None  # Join / SnapshotRequest awaiting its Snapshot
        self._ctrl_sent_at = 0
        self._leave_requested = False
        self.steps = 0

    def _env(self, seq: int, round_: int) -> Envelope:
        return Envelope(self.id, self.epoch, seq, round_, self.settings.spec_hash)

    def _encode(self, msg: Message) -> bytes:
        data = encode_message(msg)
        return data if self.auth is None else self.auth.seal(data, self.coordinator)

    # -- control -----------------------------------------------------------------------------
    def start(self, now: int) -> list[Send]:
        """Ask to join (again after being dropped: the coordinator assigns a new incarnation)."""
        self.status = "joining"
        self._in_flight = None
        self._pending = None
        self._ctrl = self._encode(Join(self._env(0, 0), self.name, self.incarnation, self.boot))
        self._ctrl_sent_at = now
        return [(self.coordinator, self._ctrl)]

    def request_resync(self, now: int) -> list[Send]:
        """Ask for a Snapshot (the local state is lost or suspect); retransmitted until answered."""
        self._ctrl = self._encode(SnapshotRequest(self._env(0, self.last_round), self.incarnation))
        self._ctrl_sent_at = now
        return [(self.coordinator, self._ctrl)]

    def leave(self, now: int) -> list[Send]:
        """Leave after the message in flight (if any) is acknowledged."""
        self._leave_requested = True
        return self._send_leave(now) if self.status == "member" and self._in_flight is None else []

    def _send_leave(self, now: int) -> list[Send]:
        self.status = "leaving"
        seq = self._next_seq
        self._next_seq += 1
        data = self._encode(Leave(self._env(seq, max(self.last_round, 0)), "leave"))
        self._in_flight = _InFlight(seq, data, now, "leave")
        return [(self.coordinator, data)]

    # -- input -------------------------------------------------------------------------------
    def receive(self, data: bytes, now: int) -> list[Send]:
        msg = _decode(data, self.settings, self.stats, self.auth)
        if msg is None:
            return []
        if msg.env.sender != self.coordinator:
            self.stats.reject("NotFromCoordinator")
            return []
        if isinstance(msg, Snapshot):
            return self._on_snapshot(msg, now)
        if isinstance(msg, Ack):
            return self._on_ack(msg, now)
        if isinstance(msg, Broadcast):
            return self._on_broadcast(msg, now)
        self.stats.reject("UnexpectedType")
        return []

    def _on_snapshot(self, snap: Snapshot, now: int) -> list[Send]:
        if self.status in ("idle", "left", "leaving"):
            self.stats.fenced += 1
            return []
        if self.status == "joining":
            # The answer to this Join carries a newly assigned incarnation, above any held before;
            # a Snapshot of an earlier admission is not.
            if snap.incarnation <= self.incarnation:
                self.stats.fenced += 1
                return []
            self.incarnation = snap.incarnation
        elif snap.incarnation != self.incarnation:
            self.stats.fenced += 1
            return []
        elif snap.joined_epoch <= self.joined_epoch:
            self.stats.duplicates += 1  # the answer to a retried Join / an older resync
            return []
        self.status = "member"
        self.joined_epoch = snap.joined_epoch
        self.epoch = max(self.epoch, snap.env.epoch)
        self._next_seq = snap.next_seq
        self._in_flight = None
        self._ctrl = None
        restore = getattr(self.app, "restore", None)
        if restore is not None:
            restore(snap.state)
        self.last_round = snap.env.round - 1
        view = BroadcastView(snap.env.round, snap.env.epoch, snap.z, snap.rho, snap.members)
        if self._leave_requested:
            return self._send_leave(now)
        return self._step(view, now)

    def _on_ack(self, ack: Ack, now: int) -> list[Send]:
        f = self._in_flight
        if f is None or ack.of_seq != f.seq:
            self.stats.duplicates += 1
            return []
        if ack.status == AckStatus.LEFT:
            if f.kind != "leave":
                return []
            self._in_flight = None
            self.status = "left"
            return []
        if ack.joined_epoch != self.joined_epoch:
            self.stats.fenced += 1  # acknowledges a previous admission's message
            return []
        self._in_flight = None
        self.epoch = max(self.epoch, ack.env.epoch)
        if self._leave_requested:
            return self._send_leave(now)
        if self._pending is not None:
            view, self._pending = self._pending, None
            return self._step(view, now)
        return []

    def _on_broadcast(self, b: Broadcast, now: int) -> list[Send]:
        if self.status != "member" or b.env.epoch < self.joined_epoch:
            return []  # old news (or not a member yet: the join Snapshot carries the state)
        self.epoch = max(self.epoch, b.env.epoch)
        if self.id not in b.members:
            # Dropped (a straggler past tau, or silent too long): rejoin; the coordinator assigns
            # a new incarnation, fencing whatever this one still has in flight.
            self.stats.dropped_members += 1
            return self.start(now)
        if b.env.round <= self.last_round:
            return []
        view = BroadcastView(b.env.round, b.env.epoch, b.z, b.rho, b.members)
        if self._in_flight is not None:
            self._pending = view  # at most one message in flight: answer after the ack
            return []
        return self._step(view, now)

    def _step(self, view: BroadcastView, now: int) -> list[Send]:
        out = self.app.step(view)
        if not isinstance(out, NodeOutput):
            out = NodeOutput(out)
        self.last_round = view.round
        self.steps += 1
        seq = self._next_seq
        self._next_seq += 1
        data = self._encode(Delta(self._env(seq, view.round), out.contributions, out.residuals))
        self._in_flight = _InFlight(seq, data, now, "delta")
        return [(self.coordinator, data)]

    # -- time --------------------------------------------------------------------------------
    def next_due(self) -> int | None:
        """The first tick at which :meth:`tick` would retransmit something (None: nothing is
        waiting for an answer). A host that calls nodes remotely skips the calls before it."""
        s = self.settings
        due = [t + s.retransmit_after for t in (
            self._ctrl_sent_at if self._ctrl is not None else None,
            self._in_flight.sent_at if self._in_flight is not None else None,
        ) if t is not None]
        return min(due) if due else None

    def tick(self, now: int) -> list[Send]:
        """Retransmit the unanswered Join/SnapshotRequest or in-flight Delta/Leave (same bytes)."""
        s = self.settings
        if self._ctrl is not None and now - self._ctrl_sent_at >= s.retransmit_after:
            self._ctrl_sent_at = now
            self.stats.retransmits += 1
            return [(self.coordinator, self._ctrl)]
        f = self._in_flight
        if f is not None and now - f.sent_at >= s.retransmit_after:
            f.sent_at = now
            self.stats.retransmits += 1
            return [(self.coordinator, f.data)]
        return []


Endpoint = Union[CoordinatorProtocol, NodeProtocol]
