"""Signed delta-sync frames and tenant isolation.

**Wire form** (``docs/protocol.md`` §9 is normative). A sealed frame is an envelope around an
unchanged ``CATF`` frame; little-endian::

    off     size  field
    0       4     magic "CATS"
    4       1     envelope version (1)
    5       1     algorithm: 1 = Ed25519 signature, 2 = HMAC-SHA256 with a pairwise key
    6       2     u16 D: sender DID length (1..256)
    8       D     sender DID, UTF-8 (did:key, Ed25519)
    8+D     4     u32 F: frame length
    12+D    F     the CATF frame
    12+D+F  T     tag over bytes [0, 12+D+F): T = 64, Ed25519 over "catopt-sync-frame-v1" 0x00 || bytes;
                  T = 32, HMAC-SHA256 over "catopt-sync-mac-v1" 0x00 || bytes
    12+D+F+T 4    CRC32C over bytes [0, 12+D+F+T)

Everything a member sends, and every Broadcast, is signed (algorithm 1): attributable to its DID
and checkable by anyone. What the coordinator tells one node alone (Ack, Snapshot) is
authenticated with a key only the two share (algorithm 2): HKDF-SHA256 over the X25519 secret of
their DIDs' keyAgreement keys (static Diffie-Hellman, no handshake), info ``"catopt-sync-pair-v1"
0x00 || lower DID || 0x00 || higher DID``. Both tags are deterministic, so the same frame sealed
twice is the same bytes (retransmissions stay identical). The CRC separates damage in transit
(``ChecksumError``, as for unsealed frames) from forgery (``BadSignature``).

**Checks** a coordinator makes (:class:`CoordinatorAuth`), each refusal counted in
``ProtocolStats.errors`` under its reason and never applied:

* ``Unsigned`` / ``MalformedEnvelope`` / ``ChecksumError``: not a sound envelope;
* ``RemovedMember``: signed by a revoked DID, or by a member after its own signed Leave;
* ``UnknownDid``: the signer owns no node of this run;
* ``BadSignature``: the signature does not verify (forged, altered, or a swapped key);
* ``SpecHashMismatch`` (the protocol's own check): a frame for another plan;
* ``WrongTenant``: the signer does not own the sending node, or a Delta reports for an object
  the signer does not own;
* ``StaleEpoch``: a stream frame (Delta/Leave) from an epoch older than the sender's newest;
* ``Replay``: a stream frame whose (sender, epoch, seq) was already accepted. The one exception
  is a byte-identical copy of the sender's newest frame: a node retransmits exactly that until it
  is acknowledged, so it goes on to the protocol, which acknowledges it as a duplicate and never
  applies it twice.

* ``BadSignature`` also for a member's frame that is MAC'd rather than signed: members sign.

A node (:class:`NodeAuth`) accepts only frames the coordinator signed or MAC'd with their pair key.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import crc32c
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from catopt_dsl.identity.keys import SIGNATURE_BYTES, Identity, verify_signature
from catopt_dsl.identity.owners import Owners, OwnersError
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.sync.messages import Delta, Leave, Message
from catopt_dsl.sync.protocol import COORDINATOR_ID, AuthError

__all__ = [
    "AUTH_REASONS",
    "ENVELOPE_MAGIC",
    "MAC_CONTEXT",
    "SIGN_CONTEXT",
    "AuthConfigError",
    "CoordinatorAuth",
    "NodeAuth",
    "RunAuth",
    "Sealed",
    "pair_key",
    "require_plan_auth",
    "seal_frame",
    "unseal",
]

ENVELOPE_MAGIC = b"CATS"
ENVELOPE_VERSION = 1
ALG_ED25519 = 1
ALG_HMAC = 2
SIGN_CONTEXT = b"catopt-sync-frame-v1\x00"
MAC_CONTEXT = b"catopt-sync-mac-v1\x00"
_PAIR_INFO = b"catopt-sync-pair-v1\x00"
MAX_DID_BYTES = 256
_TAG_BYTES = {ALG_ED25519: SIGNATURE_BYTES, ALG_HMAC: 32}
_HEAD = struct.Struct("<4sBBH")
_U32 = struct.Struct("<I")
_CRC = struct.Struct("<I")
_MIN = _HEAD.size + _U32.size + 32 + _CRC.size

#: every reason a frame can be refused under by this layer (counted in ``ProtocolStats.errors``)
AUTH_REASONS = (
    "Unsigned",
    "MalformedEnvelope",
    "RemovedMember",
    "UnknownDid",
    "BadSignature",
    "WrongTenant",
    "StaleEpoch",
    "Replay",
)


class AuthConfigError(ValueError):
    """Keys and owners that cannot run a plan (an object without owner, a missing key, ...)."""


def pair_key(me: Identity, peer_did: str) -> bytes:
    """The MAC key ``me`` shares with ``peer_did`` (same on both sides; see the module docs)."""
    low, high = sorted((me.did, peer_did))
    info = _PAIR_INFO + low.encode("utf-8") + b"\x00" + high.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(me.agree(peer_did))


def _mac(key: bytes, signed: bytes) -> bytes:
    return hmac.new(key, MAC_CONTEXT + signed, hashlib.sha256).digest()


def seal_frame(frame: bytes, identity: Identity, mac_key: bytes | None = None) -> bytes:
    """Wrap a frame in an envelope: signed by ``identity``, or MAC'd with ``mac_key`` when given."""
    did = identity.did.encode("utf-8")
    alg = ALG_ED25519 if mac_key is None else ALG_HMAC
    signed = _HEAD.pack(ENVELOPE_MAGIC, ENVELOPE_VERSION, alg, len(did)) + did + _U32.pack(len(frame)) + frame
    tag = identity.sign(SIGN_CONTEXT, signed) if mac_key is None else _mac(mac_key, signed)
    body = signed + tag
    return body + _CRC.pack(crc32c.crc32c(body))


@dataclass(frozen=True, eq=False)
class Sealed:
    """A structurally sound envelope (its tag not checked yet)."""

    signer: str
    frame: bytes
    signed: bytes  # the authenticated bytes: header, DID and frame
    signature: bytes  # the tag: an Ed25519 signature or an HMAC
    alg: int = ALG_ED25519

    def verify(self, mac_key: bytes | None = None) -> bool:
        """Check the tag: a signature against the sender's DID, a MAC against ``mac_key``."""
        if self.alg == ALG_ED25519:
            return verify_signature(self.signer, self.signature, SIGN_CONTEXT, self.signed)
        return mac_key is not None and hmac.compare_digest(_mac(mac_key, self.signed), self.signature)


def unseal(data: bytes) -> Sealed:
    """Parse an envelope; :class:`AuthError` (``Unsigned``, ``ChecksumError``, ``MalformedEnvelope``)."""
    n = len(data)
    if n < 4 or bytes(data[:4]) != ENVELOPE_MAGIC:
        raise AuthError("Unsigned", "not a signed envelope (an unsigned frame where signatures are required)")
    if n < _MIN:
        raise AuthError("MalformedEnvelope", f"envelope of {n} bytes is too short")
    (stored,) = _CRC.unpack_from(data, n - _CRC.size)
    if crc32c.crc32c(data[: n - _CRC.size]) != stored:
        raise AuthError("ChecksumError", "envelope CRC32C mismatch (damaged in transit)")
    _magic, version, alg, did_len = _HEAD.unpack_from(data, 0)
    if version != ENVELOPE_VERSION or alg not in _TAG_BYTES:
        raise AuthError("MalformedEnvelope", f"envelope version {version} / algorithm {alg} is not supported")
    tag_len = _TAG_BYTES[alg]
    if not 0 < did_len <= MAX_DID_BYTES:
        raise AuthError("MalformedEnvelope", f"signer DID length {did_len}")
    at = _HEAD.size + did_len
    if at + _U32.size > n:
        raise AuthError("MalformedEnvelope", "envelope cut inside its DID")
    (frame_len,) = _U32.unpack_from(data, at)
    end = at + _U32.size + frame_len
    if end + tag_len + _CRC.size != n:
        raise AuthError("MalformedEnvelope", "frame length does not match the envelope")
    try:
        signer = bytes(data[_HEAD.size : at]).decode("utf-8")
    except UnicodeDecodeError:
        raise AuthError("MalformedEnvelope", "sender DID is not UTF-8") from None
    return Sealed(signer, bytes(data[at + _U32.size : end]), bytes(data[:end]), bytes(data[end : end + tag_len]), alg)


@dataclass
class _Stream:
    """The newest epoch of a sender's accepted stream frames, the seqs seen in it, the newest frame."""

    epoch: int
    seqs: set[int] = field(default_factory=set)
    newest: tuple[int, bytes] = (0, b"")  # (seq, signature) of the newest accepted frame


class CoordinatorAuth:
    """The coordinator's side: signs its frames, verifies and filters the members' (module docs)."""

    def __init__(
        self,
        identity: Identity,
        node_owner: Mapping[int, str],
        owners: Owners,
        reports_for: Callable[[Message], Iterable[str]] | None = None,
        revoked: Iterable[str] = (),
    ) -> None:
        self.identity = identity
        self.node_owner = dict(node_owner)
        self.members = frozenset(self.node_owner.values())
        self.owners = owners
        self.reports_for = reports_for
        self.revoked: set[str] = set(revoked)
        self.left: set[int] = set()  # nodes that signed a Leave: they cannot come back in this run
        self._streams: dict[int, _Stream] = {}
        self._pair: dict[str, bytes] = {}

    def revoke(self, did: str) -> None:
        """Remove a member: every later frame it signs is refused (``RemovedMember``)."""
        self.revoked.add(did)

    def seal(self, frame: bytes, dst: int | None = None) -> bytes:
        """Unicast frames to a node are MAC'd with its owner's pair key; everything else is signed."""
        did = None if dst is None else self.node_owner.get(dst)
        if did is None:
            return seal_frame(frame, self.identity)
        key = self._pair.get(did)
        if key is None:
            key = self._pair[did] = pair_key(self.identity, did)
        return seal_frame(frame, self.identity, key)

    def open(self, data: bytes) -> tuple[bytes, Sealed]:
        s = unseal(data)
        if s.signer in self.revoked:
            raise AuthError("RemovedMember", f"{s.signer} was removed from this plan")
        if s.signer not in self.members:
            raise AuthError("UnknownDid", f"{s.signer} owns no node of this run")
        if s.alg != ALG_ED25519:
            raise AuthError("BadSignature", f"{s.signer}: members sign their frames (Ed25519), they do not MAC them")
        if not s.verify():
            raise AuthError("BadSignature", f"the signature does not verify for {s.signer}")
        return s.frame, s

    def _retransmission(self, sid: int, msg: Message, s: Sealed) -> bool:
        st = self._streams.get(sid)
        return st is not None and msg.env.epoch == st.epoch and st.newest == (msg.env.seq, s.signature)

    def admit(self, token: Sealed, msg: Message) -> None:
        sid, signer = msg.env.sender, token.signer
        stream = isinstance(msg, (Delta, Leave))
        if stream and self._retransmission(sid, msg, token):
            return  # the node resends its newest frame until acknowledged: the protocol dedups it
        if self.node_owner.get(sid) != signer:
            raise AuthError("WrongTenant", f"{signer} does not own node {sid}")
        if sid in self.left:
            raise AuthError("RemovedMember", f"node {sid} left this run")
        if isinstance(msg, Delta):
            for obj in self.reports_for(msg) if self.reports_for is not None else ():
                if self.owners.owner_of(obj) != signer:
                    raise AuthError("WrongTenant", f"node {sid} ({signer}) reports for `{obj}`, which it does not own")
        if not stream:
            return
        st = self._streams.get(sid)
        epoch, seq = msg.env.epoch, msg.env.seq
        if st is None or epoch > st.epoch:
            st = self._streams[sid] = _Stream(epoch)
        elif epoch < st.epoch:
            raise AuthError("StaleEpoch", f"node {sid}: epoch {epoch} is older than its newest ({st.epoch})")
        elif seq in st.seqs:
            raise AuthError("Replay", f"node {sid}: (epoch {epoch}, seq {seq}) was already accepted")
        st.seqs.add(seq)
        st.newest = (seq, token.signature)
        if isinstance(msg, Leave):
            self.left.add(sid)


class NodeAuth:
    """A node's side: signs with the tenant's key, accepts only the coordinator's frames."""

    def __init__(self, identity: Identity, coordinator_did: str) -> None:
        self.identity = identity
        self.coordinator_did = coordinator_did
        self._key: bytes | None = None

    def seal(self, frame: bytes, dst: int | None = None) -> bytes:
        return seal_frame(frame, self.identity)

    def open(self, data: bytes) -> tuple[bytes, Sealed]:
        s = unseal(data)
        if s.signer != self.coordinator_did:
            raise AuthError("UnknownDid", f"{s.signer} is not this run's coordinator")
        if s.alg == ALG_HMAC and self._key is None:
            self._key = pair_key(self.identity, self.coordinator_did)
        if not s.verify(self._key):
            raise AuthError("BadSignature", "the coordinator's signature or MAC does not verify")
        return s.frame, s

    def admit(self, token: Sealed, msg: Message) -> None:
        if msg.env.sender != COORDINATOR_ID:
            raise AuthError("WrongTenant", f"a frame signed by the coordinator claims sender {msg.env.sender}")


@dataclass(frozen=True, eq=False)
class RunAuth:
    """Keys and owners for an authenticated distributed run.

    ``owners``: object -> owner DID (every object of the plan needs one). ``keys``: DID -> private
    key of each tenant whose nodes this process starts. ``coordinator``: the coordinator's key.
    ``revoked``: DIDs removed from the plan (their frames are refused from the start).
    """

    owners: Owners
    keys: Mapping[str, Identity]
    coordinator: Identity
    revoked: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for did, key in self.keys.items():
            if key.did != did:
                raise AuthConfigError(f"the key filed under {did} belongs to {key.did}")

    @classmethod
    def for_plan(
        cls,
        plan: IRPlan,
        keys: Iterable[Identity],
        coordinator: Identity | None = None,
        owners: Owners | None = None,
        revoked: Iterable[str] = (),
    ) -> RunAuth:
        """The authentication of a run of ``plan``: its owners (the spec's, else ``owners``), the
        tenants' ``keys`` (each filed under its own DID; keys of DIDs owning nothing here are left
        out) and the coordinator's key (a fresh one for this run when None: the nodes of this
        process learn its DID when they are built). Every owner needs its key: a missing one is an
        :class:`AuthConfigError` naming the DID and what it owns."""
        table = Owners.from_plan(plan)
        if table is None:
            table = owners
        elif owners is not None:
            try:
                table = table.merged(owners)
            except OwnersError as exc:
                raise AuthConfigError(str(exc)) from None
        if table is None:
            raise AuthConfigError("a signed run needs owners: name them in the spec (`owner \"did:key:...\"`) or give a key ring")
        names = [o.name for o in plan.objects]
        unowned = [n for n in names if table.owner_of(n) is None]
        if unowned:
            raise AuthConfigError(f"object `{unowned[0]}` has no owner; a signed run needs one for every object")
        by_did = {k.did: k for k in keys}
        wanted = list(dict.fromkeys(d for n in names if (d := table.owner_of(n)) is not None))  # plan order
        missing = [d for d in wanted if d not in by_did]
        if missing:
            owned = table.objects_of(missing[0], names)
            shown = ", ".join(f"`{n}`" for n in owned[:3]) + (f" and {len(owned) - 3} more" if len(owned) > 3 else "")
            more = f" (and the keys of {len(missing) - 1} more owner(s))" if len(missing) > 1 else ""
            raise AuthConfigError(f"no key for {missing[0]}, the owner of {shown}{more}")
        return cls(table, {d: by_did[d] for d in wanted}, coordinator or Identity.generate(), frozenset(revoked))

    def split(self, assignment: Mapping[int, Iterable[str]]) -> dict[int, tuple[str, ...]]:
        """The assignment with every node cut where its objects change owner (ids renumbered 1, 2, ...):
        a node speaks for one tenant only."""
        out: dict[int, tuple[str, ...]] = {}
        for nid in sorted(assignment):
            run: list[str] = []
            for name in assignment[nid]:
                if run and self.owners.owner_of(name) != self.owners.owner_of(run[-1]):
                    out[len(out) + 1] = tuple(run)
                    run = []
                run.append(name)
            if run:
                out[len(out) + 1] = tuple(run)
        return out

    def node_owners(self, assignment: Mapping[int, Iterable[str]]) -> dict[int, str]:
        """Node id -> the DID owning all its objects."""
        out: dict[int, str] = {}
        for nid, names in assignment.items():
            dids = set()
            for name in names:
                did = self.owners.owner_of(name)
                if did is None:
                    raise AuthConfigError(f"object `{name}` has no owner; an authenticated run needs one for every object")
                dids.add(did)
            if len(dids) > 1:
                raise AuthConfigError(f"node {nid} hosts objects of {len(dids)} owners; give each tenant its own nodes")
            if dids:
                out[nid] = dids.pop()
        return out

    def bind(
        self, assignment: Mapping[int, Iterable[str]], reports_for: Callable[[Message], Iterable[str]] | None = None
    ) -> tuple[CoordinatorAuth, dict[int, NodeAuth]]:
        """The coordinator's and each node's authentication layer for this node assignment."""
        owner = self.node_owners(assignment)
        nodes: dict[int, NodeAuth] = {}
        for nid, did in sorted(owner.items()):
            key = self.keys.get(did)
            if key is None:
                raise AuthConfigError(f"no key for {did}, which owns node {nid}")
            nodes[nid] = NodeAuth(key, self.coordinator.did)
        coord = CoordinatorAuth(self.coordinator, owner, self.owners, reports_for, self.revoked)
        return coord, nodes

    def check_plan(self, plan: IRPlan) -> None:
        """The owners this run signs for are the ones ``plan``'s spec names (where it names any)."""
        for o in plan.objects:
            if o.owner is not None and self.owners.owner_of(o.name) != o.owner:
                raise AuthConfigError(
                    f"object `{o.name}`: the spec names {o.owner} its owner, this run {self.owners.owner_of(o.name)}"
                )

    @staticmethod
    def details(stats: Any) -> dict[str, int]:
        """The authentication refusals among a ``ProtocolStats``'s error counts."""
        return {k: v for k, v in sorted(stats.errors.items()) if k in AUTH_REASONS}


def require_plan_auth(plan: IRPlan, auth: RunAuth | None) -> None:
    """A plan whose spec names owners runs signed, by those owners: else an :class:`AuthConfigError`."""
    if auth is None:
        if any(o.owner is not None for o in plan.objects):
            raise AuthConfigError(
                "the plan names owners, so its distributed runs are signed: give the owners' keys "
                "(RunAuth.for_plan(plan, keys); catoptc solve --keys DIR)"
            )
        return
    auth.check_plan(plan)
