"""The RFC 6962 Merkle tree against the reference implementations' published test vectors.

Vectors: the eight standard leaves, the roots of sizes 1..8, and the inclusion and consistency
proofs used by the tests of Google's certificate-transparency-go / transparency-dev/merkle
(``proof/verify_test.go``), with the same corruptions (wrong index or size, wrong or swapped
roots, truncated, extended or reordered proofs, one flipped bit per proof hash). On top: every
index and size pair up to 70 leaves against an independent recursive reference.
"""

from __future__ import annotations

import hashlib

import pytest

from catopt_dsl.ledger.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# (leaf index, tree size, audit path); indices are 0-based
INCLUSION = [
    (0, 8, _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (5, 8, _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
              "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
              "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (1, 5, _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
    (0, 1, []),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (6, 8, _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
              "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
              "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 5, _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
    (6, 7, _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
              "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
              "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _reference_mth(leaves: list[bytes]) -> bytes:
    """MTH straight from the RFC's recursive definition (independent of MerkleTree)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _reference_mth(leaves[:k]) + _reference_mth(leaves[k:])).digest()


def test_hashing_rules_and_empty_tree() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert MerkleTree().root() == EMPTY_ROOT
    assert leaf_hash(b"") == ROOTS[0]  # a one-leaf tree's root is its leaf hash
    assert node_hash(leaf_hash(LEAVES[0]), leaf_hash(LEAVES[1])) == ROOTS[1]


def test_roots_of_sizes_1_to_8() -> None:
    tree = MerkleTree()
    for n, leaf in enumerate(LEAVES, start=1):
        tree.append(leaf)
        assert tree.root() == ROOTS[n - 1], f"size {n}"
        assert root_of(LEAVES[:n]) == ROOTS[n - 1]
    for n in range(1, 9):  # any earlier size is still answerable
        assert tree.root(n) == ROOTS[n - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION, ids=[f"{i}of{n}" for i, n, _ in INCLUSION])
def test_inclusion_vectors_are_generated_and_verified(index: int, size: int, path: list[bytes]) -> None:
    tree = MerkleTree(leaf_hash(x) for x in LEAVES)
    assert tree.inclusion_proof(index, size) == path
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, path, ROOTS[size - 1])


def _inclusion_corruptions(index: int, size: int, path: list[bytes], root: bytes, leaf: bytes):  # type: ignore[no-untyped-def]
    yield "index - 1", (leaf, index - 1, size, path, root)
    yield "index + 1", (leaf, index + 1, size, path, root)
    yield "index ^ 2", (leaf, index ^ 2, size, path, root)
    yield "size * 2", (leaf, index, size * 2, path, root)
    yield "size / 2", (leaf, index, size // 2, path, root)
    yield "wrong leaf", (b"WrongLeaf", index, size, path, root)
    yield "empty root", (leaf, index, size, path, EMPTY_ROOT)
    yield "random root", (leaf, index, size, path, SOME_HASH)
    yield "trailing garbage", (leaf, index, size, [*path, b""], root)
    yield "trailing root", (leaf, index, size, [*path, root], root)
    yield "preceding garbage", (leaf, index, size, [b"", *path], root)
    yield "preceding root", (leaf, index, size, [root, *path], root)
    for i in range(len(path)):
        bad = list(path)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        yield f"flipped bit 3 of proof[{i}]", (leaf, index, size, bad, root)
    if path:
        yield "short proof", (leaf, index, size, path[:-1], root)
    if len(path) > 1:
        yield "inserted component", (leaf, index, size, [path[0], SOME_HASH, *path[1:]], root)


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION[:4], ids=[f"{i}of{n}" for i, n, _ in INCLUSION[:4]])
def test_corrupted_inclusion_proofs_fail(index: int, size: int, path: list[bytes]) -> None:
    leaf = leaf_hash(LEAVES[index])
    for desc, args in _inclusion_corruptions(index, size, path, ROOTS[size - 1], leaf):
        with pytest.raises(ProofError):
            verify_inclusion(*args)
            pytest.fail(f"{desc}: verified")


def test_degenerate_inclusion_probes_fail() -> None:
    for index, size in ((0, 0), (1, 0), (2, 1)):
        with pytest.raises(ProofError):
            verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    data_hash = leaf_hash(b"data")
    verify_inclusion(data_hash, 0, 1, [], data_hash)  # a one-leaf tree: empty proof, root = leaf
    for leaf, root in ((data_hash, b""), (b"", data_hash), (b"", b"")):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, 0, 1, [], root)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY, ids=[f"{m}to{n}" for m, n, _ in CONSISTENCY])
def test_consistency_vectors_are_generated_and_verified(old: int, new: int, proof: list[bytes]) -> None:
    tree = MerkleTree(leaf_hash(x) for x in LEAVES)
    assert tree.consistency_proof(old, new) == proof
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def _consistency_corruptions(old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]):  # type: ignore[no-untyped-def]
    yield "old - 1", (old - 1, new, r1, r2, proof)
    yield "old + 1", (old + 1, new, r1, r2, proof)
    yield "old ^ 2", (old ^ 2, new, r1, r2, proof)
    yield "new * 2", (old, new * 2, r1, r2, proof)
    yield "new / 2", (old, new // 2, r1, r2, proof)
    yield "wrong old root", (old, new, b"WrongRoot", r2, proof)
    yield "wrong new root", (old, new, r1, b"WrongRoot", proof)
    yield "swapped roots", (old, new, r2, r1, proof)
    yield "empty proof", (old, new, r1, r2, [])
    yield "trailing garbage", (old, new, r1, r2, [*proof, b""])
    yield "trailing old root", (old, new, r1, r2, [*proof, r1])
    yield "trailing new root", (old, new, r1, r2, [*proof, r2])
    yield "preceding garbage", (old, new, r1, r2, [b"", *proof])
    yield "preceding old root", (old, new, r1, r2, [r1, *proof])
    yield "preceding new root", (old, new, r1, r2, [r2, *proof])
    yield "preceding proof[0]", (old, new, r1, r2, [proof[0], *proof])
    yield "short proof", (old, new, r1, r2, proof[:-1])
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        yield f"flipped bit 4 of proof[{i}]", (old, new, r1, r2, bad)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY[1:], ids=[f"{m}to{n}" for m, n, _ in CONSISTENCY[1:]])
def test_corrupted_consistency_proofs_fail(old: int, new: int, proof: list[bytes]) -> None:
    for desc, args in _consistency_corruptions(old, new, ROOTS[old - 1], ROOTS[new - 1], proof):
        with pytest.raises(ProofError):
            verify_consistency(*args)
            pytest.fail(f"{desc}: verified")


def test_degenerate_consistency_probes() -> None:
    r = ROOTS[0]
    verify_consistency(1, 1, r, r, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    for args in (
        (1, 1, r, ROOTS[1], []),  # equal sizes, different roots
        (1, 1, r, r, [EMPTY_ROOT]),  # equal sizes, a proof anyway
        (0, 1, EMPTY_ROOT, r, []),  # from the empty tree: undefined
        (1, 0, r, EMPTY_ROOT, []),  # time travel
        (2, 1, ROOTS[1], r, []),
        (1, 2, r, ROOTS[1], []),  # empty proof
    ):
        with pytest.raises(ProofError):
            verify_consistency(*args)


def test_every_proof_up_to_70_leaves_against_a_reference() -> None:
    data = [i.to_bytes(4, "big") * (i % 5) for i in range(70)]
    tree = MerkleTree()
    for n in range(1, len(data) + 1):
        tree.append(data[n - 1])
        assert tree.root() == _reference_mth(data[:n])
    roots = [tree.root(n) for n in range(len(data) + 1)]
    for n in range(1, len(data) + 1):
        for i in range(n):
            verify_inclusion(leaf_hash(data[i]), i, n, tree.inclusion_proof(i, n), roots[n])
        for m in range(1, n + 1):
            verify_consistency(m, n, roots[m], roots[n], tree.consistency_proof(m, n))
    with pytest.raises(ProofError):
        tree.inclusion_proof(70, 70)
    with pytest.raises(ProofError):
        tree.consistency_proof(5, 71)
