"""The checked-in golden vectors are exactly what the Python runtime produces today, and they
cover the edge cases the native decoders must agree on."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from make_vectors import (
    EDGE_SPEC,
    FRAME_VECTORS,
    VECTORS,
    build_frame_vectors,
    build_vectors,
    frame_index_text,
    index_text,
)

from catopt_dsl.compile import load_plan
from catopt_dsl.wire.record import decode_record


@pytest.fixture(scope="module")
def built() -> tuple[list[dict[str, object]], dict[str, bytes]]:
    return build_vectors()


def test_vectors_are_current(built: tuple[list[dict[str, object]], dict[str, bytes]]) -> None:
    entries, files = built
    on_disk = {p.name: p.read_bytes() for p in VECTORS.glob("*.bin")}
    stale = sorted(n for n in set(files) | set(on_disk) if files.get(n) != on_disk.get(n))
    assert not stale, f"stale vectors (run `python tests/conformance/make_vectors.py`): {stale[:10]}"
    assert (VECTORS / "index.json").read_text(encoding="utf-8") == index_text(entries)


#: every error kind a decoder may report: the WireError subclasses (docs/protocol.md), minus "Error"
KINDS = {
    "Truncated",
    "Checksum",
    "BadMagic",
    "Version",
    "Length",
    "TooLarge",
    "Malformed",
    "UnknownMessageType",
    "SchemaMismatch",
    "MissingField",
}


def test_frame_vectors_are_current() -> None:
    entries, files = build_frame_vectors()
    on_disk = {p.name: p.read_bytes() for p in FRAME_VECTORS.glob("*.bin")}
    stale = sorted(n for n in set(files) | set(on_disk) if files.get(n) != on_disk.get(n))
    assert not stale, f"stale frame vectors (run `python tests/conformance/make_vectors.py`): {stale[:10]}"
    assert (FRAME_VECTORS / "index.json").read_text(encoding="utf-8") == frame_index_text(entries)


def test_frame_vectors_cover_every_frame_error_kind() -> None:
    entries, _ = build_frame_vectors()
    kinds = {e["error"] for e in entries if e["expect"] == "error"}
    assert kinds <= KINDS
    assert kinds == {"Truncated", "Checksum", "BadMagic", "Version", "Length", "TooLarge", "Malformed", "UnknownMessageType"}
    assert sum(e["expect"] == "ok" for e in entries) >= 9


def test_every_expectation_names_a_file(built: tuple[list[dict[str, object]], dict[str, bytes]]) -> None:
    entries, files = built
    for e in entries:
        assert e["file"] in files
        if e["expect"] == "ok":
            assert e["output"] in files
        else:
            assert e["error"] in KINDS - {"TooLarge", "UnknownMessageType"}  # frame-only kinds


def _bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def test_edge_sample_carries_the_special_values() -> None:
    plan = load_plan(EDGE_SPEC)
    v1 = plan.schema("Edge", 1)
    got = decode_record(v1, (VECTORS / "Edge_v1_sample.bin").read_bytes())
    floats = [float(got["f"]), *np.asarray(got["fa"]).tolist()]
    bits = {_bits(x) for x in floats}
    assert any(math.isinf(x) and x > 0 for x in floats) and any(math.isinf(x) and x < 0 for x in floats)
    assert _bits(-0.0) in bits
    assert 0x7FF0_0000_0000_0001 in bits or 0xFFF8_0000_DEAD_BEEF in bits  # NaN payloads survive
    ints = [int(got["i"]), *np.asarray(got["ia"]).tolist()]
    assert -(2**63) in ints and 2**63 - 1 in ints
    assert np.asarray(got["empty"]).shape == (0,)
    assert np.asarray(got["ba"]).shape == (2, 2)


def test_cross_version_vectors_fill_defaults_and_skip_appended_fields() -> None:
    index = json.loads((VECTORS / "index.json").read_text(encoding="utf-8"))["vectors"]
    by_id = {e["id"]: e for e in index}
    plan = load_plan(EDGE_SPEC)
    up = by_id["Edge_v1_as_v2"]
    v2 = decode_record(plan.schema("Edge", 2), (VECTORS / up["output"]).read_bytes())
    assert _bits(float(v2["scale"])) == _bits(-0.0) and list(v2["counts"]) == [7, -7] and v2["enabled"] is True
    down = by_id["Edge_v2_as_v1"]
    assert down["expect"] == "ok"
    assert len((VECTORS / down["output"]).read_bytes()) < len((VECTORS / down["file"]).read_bytes())
