"""Governance events as signed ledger entries, and signed tree heads.

An entry is the canonical JSON (:mod:`catopt_dsl.ledger.canonical`) of::

    {"v": 1, "index": i, "kind": "spec.published", "actor": "did:key:z6Mk...",
     "prev_root": "<hex root of the tree over entries 0..i-1>", "body": {...},
     "time": "2026-01-01T00:00:00Z"}           # only when the caller gives one

signed by ``actor`` with Ed25519 over ``"catopt-ledger-entry-v1" 0x00 || entry``. The leaf the
Merkle tree hashes is the entry bytes followed by the 64-byte signature, so the tree commits to
the signatures too. ``index`` and ``prev_root`` bind an entry to its place: moving, inserting or
dropping an entry breaks the signatures of everything after it. Nothing is implicit: the same
arguments (and the same key) always give the same bytes -- there is no clock in an entry unless
``time`` is passed in.

A signed tree head (STH) vouches for the whole log at one size: the canonical JSON of
``{"v": 1, "size": n, "root": "<hex>", "signer": "did:key:...", "time": ...}`` signed over
``"catopt-ledger-head-v1" 0x00 || head``. Keeping one lets anyone later prove the log only grew.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from catopt_dsl.identity.did import validate_did
from catopt_dsl.identity.keys import SIGNATURE_BYTES, Identity, verify_signature
from catopt_dsl.ledger.canonical import CanonicalError, canonical_json, parse_canonical
from catopt_dsl.ledger.merkle import HASH_SIZE

__all__ = [
    "ENTRY_CONTEXT",
    "ENTRY_VERSION",
    "HEAD_CONTEXT",
    "KINDS",
    "Entry",
    "EntryError",
    "SignedEntry",
    "TreeHead",
]

ENTRY_VERSION = 1
ENTRY_CONTEXT = b"catopt-ledger-entry-v1\x00"
HEAD_CONTEXT = b"catopt-ledger-head-v1\x00"
#: the governance events catoptc writes itself; other kinds are allowed if they match _KIND
KINDS: dict[str, str] = {
    "spec.published": "a spec (by its hash) is published for a plan",
    "schema.registered": "a schema version is registered",
    "adapter.approved": "a functor/adapter is approved for a platform",
    "delta.applied": "a PlanDelta is applied to a running plan",
    "result.committed": "a result is accepted as the plan's outcome",
    "solve.recorded": "a solve ran: spec and data hashes, options, status and result hash",
    "member.removed": "a member's DID is removed from a plan",
}
_KIND = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*")
_ENTRY_KEYS = {"v", "index", "kind", "actor", "prev_root", "body", "time"}


class EntryError(ValueError):
    """An entry or tree head that is malformed (not one this module would write)."""


def _hex32(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or len(text) != 2 * HASH_SIZE or text != text.lower():
        raise EntryError(f"{what} must be {2 * HASH_SIZE} lowercase hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise EntryError(f"{what} must be {2 * HASH_SIZE} lowercase hex digits") from None


@dataclass(frozen=True)
class Entry:
    """One governance event (unsigned)."""

    index: int
    kind: str
    actor: str
    prev_root: bytes
    body: Mapping[str, Any] = field(default_factory=dict)
    time: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.index, int) or isinstance(self.index, bool) or self.index < 0:
            raise EntryError(f"entry index {self.index!r} must be a non-negative integer")
        if not isinstance(self.kind, str) or not _KIND.fullmatch(self.kind) or len(self.kind) > 64:
            raise EntryError(f"entry kind {self.kind!r}: lowercase dotted words such as `spec.published`")
        why = validate_did(self.actor) if isinstance(self.actor, str) else "not text"
        if why is not None:
            raise EntryError(f"entry actor {self.actor!r} is not a usable DID: {why}")
        if len(self.prev_root) != HASH_SIZE:
            raise EntryError("prev_root must be a 32-byte hash")
        if not isinstance(self.body, Mapping):
            raise EntryError("an entry body is a JSON object")
        if self.time is not None and (not isinstance(self.time, str) or not self.time):
            raise EntryError("time, when given, is non-empty text (e.g. RFC 3339)")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "v": ENTRY_VERSION,
            "index": self.index,
            "kind": self.kind,
            "actor": self.actor,
            "prev_root": self.prev_root.hex(),
            "body": dict(self.body),
        }
        if self.time is not None:
            d["time"] = self.time
        return d

    def encode(self) -> bytes:
        try:
            return canonical_json(self.to_dict())
        except CanonicalError as exc:
            raise EntryError(f"entry body: {exc}") from None

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        try:
            d = parse_canonical(data)
        except CanonicalError as exc:
            raise EntryError(f"entry is not canonical JSON: {exc}") from None
        if not isinstance(d, dict):
            raise EntryError("an entry is a JSON object")
        if d.get("v") != ENTRY_VERSION:
            raise EntryError(f"entry version {d.get('v')!r} is not supported")
        extra = set(d) - _ENTRY_KEYS
        missing = (_ENTRY_KEYS - {"time"}) - set(d)
        if extra or missing:
            raise EntryError(f"entry fields: unexpected {sorted(extra)}, missing {sorted(missing)}")
        if not isinstance(d["body"], dict):
            raise EntryError("an entry body is a JSON object")
        return cls(d["index"], d["kind"], d["actor"], _hex32(d["prev_root"], "prev_root"), d["body"], d.get("time"))

    def sign(self, identity: Identity) -> SignedEntry:
        if identity.did != self.actor:
            raise EntryError(f"the entry's actor is {self.actor}, but the key is {identity.did}")
        data = self.encode()
        return SignedEntry(self, data, identity.sign(ENTRY_CONTEXT, data))


@dataclass(frozen=True)
class SignedEntry:
    """An entry with its canonical bytes and its actor's signature."""

    entry: Entry
    data: bytes
    signature: bytes

    @property
    def record(self) -> bytes:
        """The stored payload and Merkle leaf: entry bytes then the 64-byte signature."""
        return self.data + self.signature

    @classmethod
    def from_record(cls, record: bytes) -> SignedEntry:
        if len(record) <= SIGNATURE_BYTES:
            raise EntryError(f"a record is an entry followed by a {SIGNATURE_BYTES}-byte signature")
        data, sig = bytes(record[:-SIGNATURE_BYTES]), bytes(record[-SIGNATURE_BYTES:])
        return cls(Entry.decode(data), data, sig)

    def verify(self) -> bool:
        """True iff the signature is the actor's over the entry bytes."""
        return verify_signature(self.entry.actor, self.signature, ENTRY_CONTEXT, self.data)


@dataclass(frozen=True)
class TreeHead:
    """A signed statement: the log had ``size`` entries with root ``root``."""

    size: int
    root: bytes
    signer: str
    signature: bytes
    time: str | None = None

    def payload(self) -> bytes:
        d: dict[str, Any] = {"v": 1, "size": self.size, "root": self.root.hex(), "signer": self.signer}
        if self.time is not None:
            d["time"] = self.time
        return canonical_json(d)

    @classmethod
    def sign(cls, size: int, root: bytes, identity: Identity, time: str | None = None) -> TreeHead:
        unsigned = cls(size, root, identity.did, b"", time)
        return cls(size, root, identity.did, identity.sign(HEAD_CONTEXT, unsigned.payload()), time)

    def verify(self) -> bool:
        return verify_signature(self.signer, self.signature, HEAD_CONTEXT, self.payload())

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "type": "catopt-tree-head",
            "v": 1,
            "size": self.size,
            "root": self.root.hex(),
            "signer": self.signer,
            "signature": self.signature.hex(),
        }
        if self.time is not None:
            d["time"] = self.time
        return json.dumps(d, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TreeHead:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EntryError(f"a tree head is JSON: {exc.msg}") from None
        if not isinstance(d, dict) or d.get("type") != "catopt-tree-head" or d.get("v") != 1:
            raise EntryError("not a catopt tree head (type catopt-tree-head, v 1)")
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise EntryError("tree head size must be a non-negative integer")
        sig = d.get("signature")
        if not isinstance(sig, str) or len(sig) != 2 * SIGNATURE_BYTES:
            raise EntryError("tree head signature must be 128 hex digits")
        try:
            sig_bytes = bytes.fromhex(sig)
        except ValueError:
            raise EntryError("tree head signature must be 128 hex digits") from None
        signer = d.get("signer")
        if not isinstance(signer, str) or validate_did(signer) is not None:
            raise EntryError("tree head signer must be a did:key")
        time = d.get("time")
        if time is not None and not isinstance(time, str):
            raise EntryError("tree head time must be text")
        return cls(size, _hex32(d.get("root"), "tree head root"), signer, sig_bytes, time)
