"""The Merkle tree of Certificate Transparency (RFC 6962 §2.1, RFC 9162 §2.1), proofs and checks.

Hashing (SHA-256): the empty tree hashes to ``SHA-256("")``; a leaf to ``SHA-256(0x00 || d)``; an
inner node to ``SHA-256(0x01 || left || right)``. A list of n > 1 leaves splits at k, the
largest power of two *smaller than* n: ``MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))``.

:class:`MerkleTree` keeps every complete power-of-two subtree's hash (``levels[h][i]`` covers
leaves ``[i·2^h, (i+1)·2^h)``), updated in amortised O(1) per append, so the root of any prefix,
an inclusion proof (``PATH``) and a consistency proof (``PROOF``) cost O(log n) hashes: under the
RFC's split rule every left subtree is a complete, aligned power-of-two subtree.

The verifiers follow RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) literally and
accept nothing else: every hash must be 32 bytes, the proof must have exactly the length the
sizes imply; between equal sizes the proof is empty and the roots equal, and from the empty tree
there is no consistency proof (every tree trivially extends it; callers decide that case).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


class ProofError(ValueError):
    """A proof that does not verify, or a request for a proof that cannot exist."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 6962 tree over leaf hashes."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def __len__(self) -> int:
        return self.size

    def append(self, data: bytes) -> bytes:
        """Add a leaf holding ``data``; returns its leaf hash."""
        h = leaf_hash(data)
        self.append_hash(h)
        return h

    def append_hash(self, h: bytes) -> None:
        """Add a leaf by its hash, completing every subtree the new leaf closes."""
        if len(h) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got {len(h)}")
        levels = self.levels
        levels[0].append(h)
        i, k = len(levels[0]) - 1, 0
        while i & 1:  # the new node is a right child: its parent is complete now
            if k + 1 == len(levels):
                levels.append([])
            levels[k + 1].append(node_hash(levels[k][i - 1], levels[k][i]))
            i >>= 1
            k += 1

    def leaf(self, index: int) -> bytes:
        return self.levels[0][index]

    # -- hashes of ranges ------------------------------------------------------------------------
    def _mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a range produced by the RFC's recursion (lo aligned to its left half)."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:
            return self.levels[n.bit_length() - 1][lo // n]
        k = _split(n)
        return node_hash(self._mth(lo, lo + k), self._mth(lo + k, hi))

    def _check_size(self, size: int | None) -> int:
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ProofError(f"tree size {n} is outside 0..{self.size}")
        return n

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (default: all)."""
        return self._mth(0, self._check_size(size))

    # -- proofs ----------------------------------------------------------------------------------
    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """``PATH(index, D[0:size])``: the audit path of leaf ``index`` (RFC 6962 §2.1.1)."""
        n = self._check_size(size)
        if not 0 <= index < n:
            raise ProofError(f"leaf {index} is not in a tree of size {n}")
        path: list[bytes] = []
        lo, hi, m = 0, n, index
        while hi - lo > 1:
            k = _split(hi - lo)
            if m < k:
                path.append(self._mth(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._mth(lo, lo + k))
                lo, m = lo + k, m - k
        path.reverse()  # the recursion appends from the root down; proofs list leaf-side first
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """``PROOF(old_size, D[0:new_size])`` (RFC 6962 §2.1.2); empty when the sizes are equal."""
        n = self._check_size(new_size)
        if not 0 <= old_size <= n:
            raise ProofError(f"old size {old_size} is outside 0..{n}")
        if old_size == 0 or old_size == n:
            return []
        proof: list[bytes] = []
        lo, hi, m, complete = 0, n, old_size, True
        while True:
            size = hi - lo
            if m == size:
                if not complete:
                    proof.append(self._mth(lo, hi))
                break
            k = _split(size)
            if m <= k:
                proof.append(self._mth(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._mth(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        proof.reverse()
        return proof


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of raw leaf data (a convenience over :class:`MerkleTree`)."""
    return MerkleTree(leaf_hash(d) for d in leaves).root()


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise ProofError(f"{what}[{i}] is not a {HASH_SIZE}-byte hash")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that the leaf with hash ``leaf`` is entry ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2; raises :class:`ProofError` saying why it fails.
    """
    _check_hashes("leaf hash", [leaf])
    _check_hashes("root", [root])
    _check_hashes("proof", proof)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is deep")
    if r != root:
        raise ProofError("the proof leads to another root")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``new_size`` / ``new_root`` extends the one of ``old_size`` / ``old_root``.

    RFC 9162 §2.1.4.2; raises :class:`ProofError` saying why it fails.
    """
    _check_hashes("root", [old_root, new_root])
    _check_hashes("proof", proof)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"sizes {old_size} -> {new_size}: a log never shrinks")
    if old_size == new_size:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if old_root != new_root:
            raise ProofError("equal sizes with different roots")
        return
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree is not defined (RFC 9162 §2.1.4)")
    if not proof:
        raise ProofError("the proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree: its root starts the path
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is deep")
    if fr != old_root:
        raise ProofError("the proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("the proof does not lead to the new root")
