"""The governance ledger: signed entries in an append-only file, under an RFC 6962 Merkle tree.

``Ledger.open(path)`` reads and checks the file's structure (:mod:`catopt_dsl.ledger.store`)
and rebuilds the tree; ``append`` signs and durably adds entries; ``verify`` re-checks every
record, entry, signature and the chain of ``prev_root``\\s, and optionally that the log extends a
signed tree head saved earlier (the only way to notice whole entries cut off the end); ``prove``
and ``consistency`` produce the RFC 6962 proofs a third party checks with
:func:`~catopt_dsl.ledger.merkle.verify_inclusion` / :func:`~catopt_dsl.ledger.merkle.verify_consistency`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catopt_dsl.identity.keys import Identity
from catopt_dsl.ledger.entry import Entry, EntryError, SignedEntry, TreeHead
from catopt_dsl.ledger.merkle import (
    MerkleTree,
    ProofError,
    leaf_hash,
    verify_consistency,
)
from catopt_dsl.ledger.store import (
    Damage,
    LedgerFileError,
    Scan,
    TornTail,
    append_records,
    create_file,
    locked,
    read_locked,
    recover_torn_tail,
    scan,
)

__all__ = ["Ledger", "LedgerDamagedError", "LedgerError", "Problem", "VerifyReport"]

#: (kind, body, time) of one entry to append
Item = tuple[str, Mapping[str, Any], "str | None"]


class LedgerError(ValueError):
    """A ledger that cannot be used for what was asked (the message is one line for the CLI)."""


class LedgerDamagedError(LedgerError):
    """The file holds corrupt records: appends are refused until a person looks at it."""


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong; ``index`` names the entry (None: the ledger as a whole)."""

    index: int | None
    message: str
    offset: int | None = None

    def describe(self) -> str:
        if self.index is None:
            return self.message
        where = f" (offset {self.offset})" if self.offset is not None else ""
        return f"entry {self.index}{where}: {self.message}"


@dataclass
class VerifyReport:
    size: int
    root: bytes
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LedgerError(f"{path}: no such ledger") from None
    except IsADirectoryError:
        raise LedgerError(f"{path}: is a directory, not a ledger") from None
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read: {exc.strerror}") from None


class Ledger:
    """An open ledger file (see the module docs)."""

    def __init__(self, path: Path, found: Scan, file_size: int) -> None:
        self.path = path
        self._load(found, file_size)
        #: torn tails this object moved aside before appending: (what, where the bytes went)
        self.recovered: list[tuple[TornTail, Path]] = []

    def _load(self, found: Scan, file_size: int) -> None:
        self._scan = found
        self._payloads: list[bytes] = list(found.payloads)
        self._offsets: list[int] = list(found.offsets)
        self._file_size = file_size
        self.tree = MerkleTree(leaf_hash(p) for p in self._payloads)

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, create: bool = False) -> Ledger:
        """Read ``path`` (creating an empty ledger first if ``create`` and it does not exist)."""
        path = Path(path)
        if create and not path.exists():
            try:
                create_file(path)
            except LedgerFileError as exc:
                raise LedgerError(str(exc)) from None
        data = _read(path)
        try:
            found = scan(data)
        except LedgerFileError as exc:
            raise LedgerError(f"{path}: {exc}") from None
        return cls(path, found, len(data))

    @property
    def torn(self) -> TornTail | None:
        """An interrupted append found when the file was read (None once recovered)."""
        return self._scan.torn

    @property
    def damage(self) -> list[Damage]:
        return list(self._scan.damage)

    @property
    def size(self) -> int:
        return len(self._payloads)

    def root(self, size: int | None = None) -> bytes:
        return self.tree.root(size)

    def record(self, index: int) -> bytes:
        return self._payloads[index]

    def entry(self, index: int) -> SignedEntry:
        """Entry ``index`` parsed (raises :class:`EntryError` if it is malformed)."""
        if not 0 <= index < self.size:
            raise LedgerError(f"entry {index} does not exist (the ledger has {self.size})")
        return SignedEntry.from_record(self._payloads[index])

    def entries(self) -> Iterator[SignedEntry]:
        for i in range(self.size):
            yield self.entry(i)

    # -- appending -----------------------------------------------------------------------------
    def _refresh(self, fd: int) -> None:
        """Re-read the file if another writer changed it since we read it."""
        size = os.fstat(fd).st_size
        if size == self._file_size and not self._scan.torn:
            return
        data = read_locked(fd)
        self._load(scan(data), len(data))

    def append(self, identity: Identity, kind: str, body: Mapping[str, Any], time: str | None = None) -> SignedEntry:
        """Sign and durably append one entry (fsync before returning)."""
        return self.append_many(identity, [(kind, body, time)])[0]

    def append_many(self, identity: Identity, items: Sequence[Item]) -> list[SignedEntry]:
        """Sign and append several entries with one write and one fsync (group commit)."""
        if not items:
            return []
        try:
            return self._append_locked(identity, items)
        except LedgerFileError as exc:
            raise LedgerError(f"{self.path}: {exc}") from None
        except OSError as exc:  # a full disk, a lost mount: the next open reports any torn bytes
            raise LedgerError(f"{self.path}: cannot write: {exc.strerror or exc}") from None

    def _append_locked(self, identity: Identity, items: Sequence[Item]) -> list[SignedEntry]:
        with locked(self.path) as fd:
            self._refresh(fd)
            if self._scan.damage:
                first = self._scan.damage[0]
                raise LedgerDamagedError(
                    f"{self.path}: {first.describe()}; refusing to append to a damaged ledger "
                    "(`catoptc ledger verify` lists every problem)"
                )
            if self._scan.torn is not None:
                aside = recover_torn_tail(self.path, fd, self._scan.torn)
                self.recovered.append((self._scan.torn, aside))
                self._file_size = self._scan.torn.offset
                self._scan = Scan(self._payloads, self._offsets, self._scan.torn.offset)
            signed: list[SignedEntry] = []
            start = self.size
            try:
                for kind, body, time in items:
                    entry = Entry(self.size, kind, identity.did, self.tree.root(), body, time)
                    se = entry.sign(identity)
                    signed.append(se)
                    self._payloads.append(se.record)
                    self.tree.append(se.record)
                at = self._file_size
                end = append_records(fd, at, [s.record for s in signed])
            except BaseException:
                del self._payloads[start:]
                self.tree = MerkleTree(leaf_hash(p) for p in self._payloads)
                raise
            pos = at
            for s in signed:
                self._offsets.append(pos)
                pos += len(s.record) + 12
            self._file_size = end
            self._scan = Scan(self._payloads, self._offsets, end)
        return signed

    # -- tree heads and proofs -----------------------------------------------------------------
    def head(self, identity: Identity, time: str | None = None) -> TreeHead:
        """A tree head for the current size, signed by ``identity``."""
        return TreeHead.sign(self.size, self.root(), identity, time)

    def prove(self, index: int, size: int | None = None) -> tuple[bytes, list[bytes], bytes]:
        """(leaf hash, audit path, root) showing entry ``index`` is in the tree of ``size``."""
        n = self.size if size is None else size
        try:
            path = self.tree.inclusion_proof(index, n)
        except ProofError as exc:
            raise LedgerError(str(exc)) from None
        return self.tree.leaf(index), path, self.tree.root(n)

    def consistency(self, old_size: int, new_size: int | None = None) -> tuple[list[bytes], bytes, bytes]:
        """(proof, old root, new root) showing the tree of ``new_size`` extends the one of ``old_size``."""
        n = self.size if new_size is None else new_size
        try:
            proof = self.tree.consistency_proof(old_size, n)
            return proof, self.tree.root(old_size), self.tree.root(n)
        except ProofError as exc:
            raise LedgerError(str(exc)) from None

    # -- verification --------------------------------------------------------------------------
    def verify(self, head: TreeHead | None = None) -> VerifyReport:
        """Re-check the file structure, every entry and signature, the chain and the tree."""
        problems: list[Problem] = []
        for d in self._scan.damage:
            problems.append(Problem(d.index, d.reason, d.offset))
        if self._scan.torn is not None:
            t = self._scan.torn
            problems.append(Problem(t.index, "incomplete record: an interrupted append (torn write)", t.offset))
        tree = MerkleTree()
        for i, payload in enumerate(self._payloads):
            off = self._offsets[i]
            try:
                se = SignedEntry.from_record(payload)
            except EntryError as exc:
                problems.append(Problem(i, f"malformed entry: {exc}", off))
                tree.append(payload)
                continue
            e = se.entry
            if e.index != i:
                problems.append(Problem(i, f"the entry says it is entry {e.index}: entries were reordered, inserted or removed", off))
            if e.prev_root != tree.root():
                problems.append(Problem(i, "prev_root does not match the entries before it: the history before it was changed", off))
            if not se.verify():
                problems.append(Problem(i, f"the signature does not verify for {e.actor}: the entry was altered or signed by another key", off))
            tree.append(payload)
        root = tree.root()
        if head is not None:
            problems.extend(self._check_head(tree, head))
        return VerifyReport(self.size, root, problems)

    def _check_head(self, tree: MerkleTree, head: TreeHead) -> list[Problem]:
        if not head.verify():
            return [Problem(None, f"the tree head's signature does not verify for {head.signer}")]
        if head.size > tree.size:
            return [Problem(None, f"a tree head signed by {head.signer} vouches for {head.size} entries, "
                                  f"but the ledger has {tree.size}: entries were removed from the end")]
        if head.size == 0:
            return []
        old_root = tree.root(head.size)
        try:
            verify_consistency(head.size, tree.size, head.root, tree.root(),
                               tree.consistency_proof(head.size, tree.size))
        except ProofError:
            return [Problem(None, f"the first {head.size} entries are not those the tree head signed by "
                                  f"{head.signer} vouches for (root {head.root.hex()[:16]}..., found {old_root.hex()[:16]}...)")]
        return []
