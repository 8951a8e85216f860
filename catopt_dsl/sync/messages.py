"""Typed protocol messages and their mapping onto frames.

Every message carries an :class:`Envelope` (the frame header minus the type). Message-specific
data travels as payload entries; entries whose names start with ``$`` are reserved for the
protocol (``$rho``, ``$members``, ...), everything else is application data (contributions, z,
node state). ``docs/protocol.md`` lists the entries of each message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Union

import numpy as np

from catopt_dsl.sync.frame import (
    DEFAULT_MAX_PAYLOAD,
    ZERO_HASH,
    Frame,
    Header,
    MsgType,
    PayloadValue,
    decode_frame,
    encode_frame,
)
from catopt_dsl.wire.errors import EncodeError, MalformedError

RESERVED_PREFIX = "$"
_RES = "$r:"  # Delta residual terms
_STATE = "$s:"  # Snapshot node state


@dataclass(frozen=True)
class Envelope:
    """Who sent a message, in which membership epoch, with which per-sender sequence number."""

    sender: int
    epoch: int
    seq: int
    round: int
    spec_hash: bytes = ZERO_HASH
    schema_id: int = 0
    schema_version: int = 0


class AckStatus(IntEnum):
    APPLIED = 0  # applied now
    DUPLICATE = 1  # already applied earlier (a retry or a network duplicate): not applied again
    LEFT = 2  # a Leave was processed (or the sender was no member already)


@dataclass(frozen=True, eq=False)
class Join:
    """A node asks to become a member (InitProducerId-style: the coordinator assigns the incarnation).

    ``boot`` grows with every start of the node's process (a start counter kept by whoever starts
    it, or the start time); ``incarnation`` is the newest incarnation the node held (0: none, a
    fresh process). The coordinator answers with a Snapshot carrying the incarnation it assigned.
    """

    env: Envelope
    name: str
    incarnation: int
    boot: int = 0
    TYPE: ClassVar[MsgType] = MsgType.JOIN


@dataclass(frozen=True, eq=False)
class Leave:
    env: Envelope
    reason: str = ""
    TYPE: ClassVar[MsgType] = MsgType.LEAVE


@dataclass(frozen=True, eq=False)
class Delta:
    """A node's summary for ``env.round``: its contributions and its local residual terms."""

    env: Envelope
    contributions: Mapping[str, np.ndarray]
    residuals: Mapping[str, float] = field(default_factory=dict)
    TYPE: ClassVar[MsgType] = MsgType.DELTA


@dataclass(frozen=True, eq=False)
class Broadcast:
    """The coordinator's state for round ``env.round`` in membership epoch ``env.epoch``."""

    env: Envelope
    z: Mapping[str, np.ndarray]
    rho: float
    members: tuple[int, ...]
    TYPE: ClassVar[MsgType] = MsgType.BROADCAST


@dataclass(frozen=True, eq=False)
class Ack:
    """Acknowledges the member's message ``of_seq`` of the incarnation that joined at ``joined_epoch``."""

    env: Envelope
    of_seq: int
    joined_epoch: int
    status: AckStatus = AckStatus.APPLIED
    TYPE: ClassVar[MsgType] = MsgType.ACK


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Full state for a node that (re)joined or lost its place: it restarts from here."""

    env: Envelope
    z: Mapping[str, np.ndarray]
    rho: float
    members: tuple[int, ...]
    state: Mapping[str, np.ndarray]
    next_seq: int
    joined_epoch: int
    incarnation: int
    TYPE: ClassVar[MsgType] = MsgType.SNAPSHOT


@dataclass(frozen=True, eq=False)
class SnapshotRequest:
    """A node asks the coordinator for a Snapshot (it lost its state)."""

    env: Envelope
    incarnation: int
    TYPE: ClassVar[MsgType] = MsgType.SNAPSHOT_REQUEST


Message = Union[Join, Leave, Delta, Broadcast, Ack, Snapshot, SnapshotRequest]


def _app_entries(arrays: Mapping[str, Any], prefix: str = "") -> dict[str, PayloadValue]:
    out: dict[str, PayloadValue] = {}
    for k, v in arrays.items():
        if not isinstance(k, str) or not k or k.startswith(RESERVED_PREFIX):
            raise EncodeError(f"application entry name {k!r} is empty or starts with the reserved '$'")
        out[prefix + k] = np.asarray(v, dtype=np.float64)
    return out


def _members(members: tuple[int, ...]) -> np.ndarray:
    return np.asarray(sorted({int(m) for m in members}), dtype=np.int64)


def to_frame(msg: Message) -> Frame:
    """The frame that carries ``msg``."""
    e = msg.env
    header = Header(msg.TYPE, e.sender, e.epoch, e.seq, e.round, e.spec_hash, e.schema_id, e.schema_version)
    p: dict[str, PayloadValue]
    if isinstance(msg, Join):
        p = {"$name": msg.name, "$incarnation": int(msg.incarnation), "$boot": int(msg.boot)}
    elif isinstance(msg, Leave):
        p = {"$reason": msg.reason}
    elif isinstance(msg, Delta):
        p = _app_entries(msg.contributions)
        for k, v in msg.residuals.items():
            p[_RES + k] = float(v)
    elif isinstance(msg, Broadcast):
        p = _app_entries(msg.z)
        p["$rho"] = float(msg.rho)
        p["$members"] = _members(msg.members)
    elif isinstance(msg, Ack):
        p = {"$of_seq": int(msg.of_seq), "$joined_epoch": int(msg.joined_epoch), "$status": int(msg.status)}
    elif isinstance(msg, Snapshot):
        p = _app_entries(msg.z)
        p.update(_app_entries(msg.state, _STATE))
        p["$rho"] = float(msg.rho)
        p["$members"] = _members(msg.members)
        p["$next_seq"] = int(msg.next_seq)
        p["$joined_epoch"] = int(msg.joined_epoch)
        p["$incarnation"] = int(msg.incarnation)
    elif isinstance(msg, SnapshotRequest):
        p = {"$incarnation": int(msg.incarnation)}
    else:  # pragma: no cover
        raise EncodeError(f"not a message: {type(msg).__name__}")
    return Frame(header=header, payload=p)


def encode_message(msg: Message) -> bytes:
    """Canonical bytes of ``msg`` (see :func:`catopt_dsl.sync.frame.encode_frame`)."""
    return encode_frame(to_frame(msg))


def _get(p: Mapping[str, PayloadValue], key: str, kind: type) -> Any:
    if key not in p:
        raise MalformedError(f"message lacks its {key!r} entry")
    v = p[key]
    if kind is int and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
        raise MalformedError(f"entry {key!r} must be a non-negative int")
    if kind is float and not isinstance(v, float):
        raise MalformedError(f"entry {key!r} must be a float")
    if kind is str and not isinstance(v, str):
        raise MalformedError(f"entry {key!r} must be text")
    return v


def _get_members(p: Mapping[str, PayloadValue]) -> tuple[int, ...]:
    v = p.get("$members")
    if not isinstance(v, np.ndarray) or v.ndim != 1 or v.dtype.kind != "i":
        raise MalformedError("entry '$members' must be a 1-d int array")
    out = tuple(int(m) for m in v)
    if any(m < 0 or m > 0xFFFF_FFFF for m in out) or list(out) != sorted(set(out)):
        raise MalformedError("entry '$members' must hold sorted, distinct u32 ids")
    return out


def _split(
    p: Mapping[str, PayloadValue], allowed: set[str], state_prefix: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, np.ndarray]]:
    app: dict[str, np.ndarray] = {}
    extra: dict[str, Any] = {}
    state: dict[str, np.ndarray] = {}
    for k, v in p.items():
        if not k.startswith(RESERVED_PREFIX):
            if not isinstance(v, (np.ndarray, float)) or (isinstance(v, np.ndarray) and v.dtype.kind != "f"):
                raise MalformedError(f"application entry {k!r} must be float data")
            app[k] = np.asarray(v, dtype=np.float64)
        elif state_prefix is not None and k.startswith(state_prefix):
            if not isinstance(v, (np.ndarray, float)) or (isinstance(v, np.ndarray) and v.dtype.kind != "f"):
                raise MalformedError(f"state entry {k!r} must be float data")
            state[k[len(state_prefix) :]] = np.asarray(v, dtype=np.float64)
        elif k.startswith(_RES) and "$r:" in allowed:
            if not isinstance(v, float):
                raise MalformedError(f"residual entry {k!r} must be a float scalar")
            extra[k] = v
        elif k not in allowed:
            raise MalformedError(f"unexpected reserved entry {k!r}")
    return app, extra, state


def from_frame(frame: Frame) -> Message:
    """The typed message a decoded frame carries; a missing or mistyped entry is a MalformedError."""
    h = frame.header
    env = Envelope(h.sender, h.epoch, h.seq, h.round, h.spec_hash, h.schema_id, h.schema_version)
    p = frame.payload
    t = h.msg_type

    def only(*keys: str) -> None:
        extra = set(p) - set(keys)
        if extra:
            raise MalformedError(f"{t.name} carries unexpected entries {sorted(extra)}")

    if t == MsgType.JOIN:
        only("$name", "$incarnation", "$boot")
        return Join(env, _get(p, "$name", str), _get(p, "$incarnation", int), _get(p, "$boot", int))
    if t == MsgType.LEAVE:
        only("$reason")
        return Leave(env, _get(p, "$reason", str))
    if t == MsgType.DELTA:
        app, res, _ = _split(p, {"$r:"})
        return Delta(env, app, {k[len(_RES) :]: v for k, v in res.items()})
    if t == MsgType.BROADCAST:
        app, _, _ = _split(p, {"$rho", "$members"})
        return Broadcast(env, app, _get(p, "$rho", float), _get_members(p))
    if t == MsgType.ACK:
        only("$of_seq", "$joined_epoch", "$status")
        status = _get(p, "$status", int)
        if status not in AckStatus._value2member_map_:
            raise MalformedError(f"unknown ack status {status}")
        return Ack(env, _get(p, "$of_seq", int), _get(p, "$joined_epoch", int), AckStatus(status))
    if t == MsgType.SNAPSHOT:
        keys = {"$rho", "$members", "$next_seq", "$joined_epoch", "$incarnation"}
        app, _, state = _split(p, keys, _STATE)
        return Snapshot(
            env,
            app,
            _get(p, "$rho", float),
            _get_members(p),
            state,
            _get(p, "$next_seq", int),
            _get(p, "$joined_epoch", int),
            _get(p, "$incarnation", int),
        )
    if t == MsgType.SNAPSHOT_REQUEST:
        only("$incarnation")
        return SnapshotRequest(env, _get(p, "$incarnation", int))
    raise MalformedError(f"unhandled message type {t!r}")  # pragma: no cover


def decode_message(
    data: bytes | bytearray | memoryview, *, max_payload: int = DEFAULT_MAX_PAYLOAD, copy: bool | None = None
) -> Message:
    """Decode bytes to a typed message; any bad input raises a :class:`WireError` subclass."""
    return from_frame(decode_frame(data, max_payload=max_payload, copy=copy))
