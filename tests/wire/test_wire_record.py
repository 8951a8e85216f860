"""Schema record codec: round trips, bit exactness, evolution, canonical bytes, typed errors."""

from __future__ import annotations

import struct

import crc32c
import numpy as np
import pytest

from catopt_dsl.ir.model import IRSchema, IRSchemaField
from catopt_dsl.wire import (
    BadMagicError,
    ChecksumError,
    EncodeError,
    LengthError,
    MalformedError,
    MissingFieldError,
    SchemaMismatchError,
    TruncatedError,
    VersionError,
    WireError,
    decode_record,
    encode_record,
)

SHAPES = [(), (3,), (2, 3), (0,), (2, 0, 3), (1, 1, 1, 1)]


def _recrc(data: bytes) -> bytes:
    """Fix up the CRC trailer after a deliberate mutation, so the structural check is what fails."""
    body = data[:-4]
    return body + struct.pack("<I", crc32c.crc32c(body))


def _value(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> object:
    if dtype == "float":
        v = rng.normal(size=shape)
    elif dtype == "int":
        v = rng.integers(-(2**62), 2**62, size=shape)
    else:
        v = rng.random(size=shape) < 0.5
    return v if shape else v.item()


@pytest.mark.parametrize("dtype", ["float", "int", "bool"])
@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip_every_dtype_and_shape(dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) * 7 + len(dtype))
    schema = IRSchema("s", 1, (IRSchemaField("a", dtype, shape), IRSchemaField("b", "float", (2,))))
    value = _value(dtype, shape, rng)
    out = decode_record(schema, encode_record(schema, {"a": value, "b": [1.5, -2.5]}))
    assert set(out) == {"a", "b"}
    if shape:
        expect_dtype = {"float": np.float64, "int": np.int64, "bool": np.bool_}[dtype]
        assert isinstance(out["a"], np.ndarray) and out["a"].dtype == expect_dtype
        assert out["a"].shape == shape
        np.testing.assert_array_equal(out["a"], np.asarray(value))
        assert out["a"].flags.writeable  # decoded arrays are owned copies
    else:
        assert type(out["a"]) is {"float": float, "int": int, "bool": bool}[dtype]
        assert out["a"] == value
    np.testing.assert_array_equal(out["b"], [1.5, -2.5])


def test_special_floats_survive_bit_exactly() -> None:
    bits = np.array(
        [
            0x7FF8000000000000,
            0x7FF0000000000001,
            0xFFF8000000000123,
            0x7FF0000000000000,
            0xFFF0000000000000,
            0x8000000000000000,
            0x0000000000000001,
            0x7FEFFFFFFFFFFFFF,
        ],
        dtype=np.uint64,
    )
    arr = bits.view(np.float64)
    schema = IRSchema("f", 1, (IRSchemaField("v", "float", (8,)), IRSchemaField("s", "float", ())))
    for i in range(len(arr)):
        out = decode_record(schema, encode_record(schema, {"v": arr, "s": arr[i]}))
        np.testing.assert_array_equal(out["v"].view(np.uint64), bits)
        assert struct.pack("<d", out["s"]) == struct.pack("<Q", int(bits[i]))


def test_int64_extremes() -> None:
    ext = np.array([np.iinfo(np.int64).min, -1, 0, 1, np.iinfo(np.int64).max], dtype=np.int64)
    schema = IRSchema(
        "i", 1, (IRSchemaField("v", "int", (5,)), IRSchemaField("lo", "int", ()), IRSchemaField("hi", "int", ()))
    )
    out = decode_record(schema, encode_record(schema, {"v": ext, "lo": -(2**63), "hi": 2**63 - 1}))
    np.testing.assert_array_equal(out["v"], ext)
    assert out["lo"] == -(2**63) and out["hi"] == 2**63 - 1
    with pytest.raises(EncodeError):
        encode_record(schema, {"v": ext, "lo": 0, "hi": 2**63})
    with pytest.raises(EncodeError):
        encode_record(schema, {"v": np.array([2**64 - 1, 0, 0, 0, 0], dtype=np.uint64), "lo": 0, "hi": 0})


V1 = IRSchema("usage", 1, (IRSchemaField("gpu", "float", (3,)), IRSchemaField("n", "int", ())))
V2 = IRSchema(
    "usage",
    2,
    V1.fields
    + (
        IRSchemaField("flags", "bool", (2,), default=[True, False]),
        IRSchemaField("w", "float", (2, 2), default=[[1.0, 2.0], [3.0, 4.0]]),
        IRSchemaField("k", "int", (), default=7),
    ),
)


def test_v2_reader_fills_appended_fields_from_defaults() -> None:
    rec = encode_record(V1, {"gpu": [1.0, 2.0, 3.0], "n": 4})
    out = decode_record(V2, rec)
    np.testing.assert_array_equal(out["gpu"], [1.0, 2.0, 3.0])
    assert out["n"] == 4
    np.testing.assert_array_equal(out["flags"], [True, False])
    assert out["flags"].dtype == np.bool_
    np.testing.assert_array_equal(out["w"], [[1.0, 2.0], [3.0, 4.0]])
    assert out["k"] == 7 and type(out["k"]) is int


def test_v1_reader_skips_unknown_trailing_fields() -> None:
    rec = encode_record(V2, {"gpu": [5.0, 6.0, 7.0], "n": -3, "w": np.full((2, 2), np.nan), "k": 1})
    out = decode_record(V1, rec)
    assert set(out) == {"gpu", "n"}
    np.testing.assert_array_equal(out["gpu"], [5.0, 6.0, 7.0])
    assert out["n"] == -3


def test_missing_fields_take_defaults_when_encoding() -> None:
    a = encode_record(V2, {"gpu": [0.0, 0.0, 1.0], "n": 1})
    b = encode_record(V2, {"gpu": [0.0, 0.0, 1.0], "n": 1, "flags": [True, False], "k": 7})
    assert a == b
    with pytest.raises(MissingFieldError):
        encode_record(V2, {"gpu": [0.0, 0.0, 1.0]})


def test_bytes_are_deterministic_and_canonical() -> None:
    vals = {"gpu": np.array([0.1, -0.0, np.inf]), "n": 2, "k": -9}
    a = encode_record(V2, vals)
    b = encode_record(V2, dict(reversed(list(vals.items()))))
    c = encode_record(V2, {"gpu": [0.1, -0.0, float("inf")], "n": np.int64(2), "k": -9})
    assert a == b == c
    assert encode_record(V2, decode_record(V2, a)) == a


def test_layout_matches_the_documented_format() -> None:
    schema = IRSchema("ab", 3, (IRSchemaField("x", "float", (2,)), IRSchemaField("f", "bool", ())))
    got = encode_record(schema, {"x": [1.0, -2.0], "f": True})
    body = (
        b"CATR"
        + bytes([1, 0])
        + struct.pack("<H", 2)
        + b"ab"
        + struct.pack("<IH", 3, 2)
        + struct.pack("<HBB", 0, 1, 1)
        + struct.pack("<I", 2)
        + struct.pack("<2d", 1.0, -2.0)
        + struct.pack("<HBB", 1, 3, 0)
        + b"\x01"
    )
    assert got == body + struct.pack("<I", crc32c.crc32c(body))


@pytest.mark.parametrize(
    "values, err",
    [
        ({"gpu": [1.0, 2.0], "n": 1}, EncodeError),  # shape
        ({"gpu": [1.0, 2.0, 3.0], "n": 1.5}, EncodeError),  # float into int
        ({"gpu": [True, False, True], "n": 1}, EncodeError),  # bool into float
        ({"gpu": ["a", "b", "c"], "n": 1}, EncodeError),  # text
        ({"gpu": [1.0, 2.0, 3.0], "n": 1, "nope": 2}, EncodeError),  # unknown field
        ({"n": 1}, MissingFieldError),
    ],
)
def test_encode_rejects_bad_values(values: dict[str, object], err: type[WireError]) -> None:
    with pytest.raises(err):
        encode_record(V1, values)


def test_int_values_are_accepted_for_float_fields() -> None:
    out = decode_record(V1, encode_record(V1, {"gpu": np.array([1, 2, 3]), "n": 0}))
    assert out["gpu"].dtype == np.float64
    np.testing.assert_array_equal(out["gpu"], [1.0, 2.0, 3.0])


def test_every_truncation_is_a_truncated_error() -> None:
    rec = encode_record(V2, {"gpu": [1.0, 2.0, 3.0], "n": 4})
    for cut in range(len(rec)):
        with pytest.raises(TruncatedError):
            decode_record(V2, rec[:cut])


def test_every_bit_flip_is_detected() -> None:
    rec = encode_record(V1, {"gpu": [1.0, 2.0, 3.0], "n": 4})
    for i in range(len(rec)):
        for bit in (0, 7):
            bad = bytearray(rec)
            bad[i] ^= 1 << bit
            with pytest.raises(WireError):
                decode_record(V1, bytes(bad))
    # a flipped payload bit is specifically a checksum failure
    bad = bytearray(rec)
    bad[-6] ^= 1
    with pytest.raises(ChecksumError):
        decode_record(V1, bytes(bad))


def test_structural_errors_with_valid_checksums() -> None:
    rec = encode_record(V1, {"gpu": [1.0, 2.0, 3.0], "n": 4})
    name_end = 8 + len("usage")
    with pytest.raises(BadMagicError):
        decode_record(V1, b"XATR" + rec[4:])
    with pytest.raises(VersionError):
        decode_record(V1, _recrc(rec[:4] + b"\x02" + rec[5:]))
    with pytest.raises(MalformedError):  # reserved flags
        decode_record(V1, _recrc(rec[:5] + b"\x01" + rec[6:]))
    with pytest.raises(SchemaMismatchError):  # another schema's record
        decode_record(V1, encode_record(IRSchema("other", 1, V1.fields), {"gpu": [1.0, 2.0, 3.0], "n": 4}))
    with pytest.raises(LengthError):  # bytes after the last field
        decode_record(V1, _recrc(rec[:-4] + b"\x00" + rec[-4:]))
    # field 0's dtype byte changed from float to int: same size, contradicts the schema
    dt = name_end + 6 + 2
    with pytest.raises(SchemaMismatchError):
        decode_record(V1, _recrc(rec[:dt] + b"\x02" + rec[dt + 1 :]))
    with pytest.raises(MalformedError):  # unknown dtype code
        decode_record(V1, _recrc(rec[:dt] + b"\x09" + rec[dt + 1 :]))
    # a huge declared dim is refused as truncation (nothing allocated)
    dims = dt + 2
    with pytest.raises(TruncatedError):
        decode_record(V1, _recrc(rec[:dims] + struct.pack("<I", 0xFFFFFFFF) + rec[dims + 4 :]))


def test_non_canonical_inputs_are_rejected() -> None:
    schema = IRSchema("b", 1, (IRSchemaField("p", "bool", (2,)), IRSchemaField("q", "bool", ())))
    rec = encode_record(schema, {"p": [True, False], "q": False})
    head = 4 + 2 + 2 + 1 + 6  # magic, version+flags, name length, "b", schema version, count
    # bool byte other than 0/1 (field 0's data starts after its 4-byte header and one dim)
    i = head + 8
    assert rec[i : i + 2] == b"\x01\x00"
    with pytest.raises(MalformedError, match="bool byte"):
        decode_record(schema, _recrc(rec[:i] + b"\x02" + rec[i + 1 :]))
    # fields out of declaration order: swap the two field blocks
    f0 = rec[head : head + 4 + 4 + 2]
    f1 = rec[head + 10 : -4]
    with pytest.raises(MalformedError):
        decode_record(schema, _recrc(rec[:head] + f1 + f0 + rec[-4:]))
    # a field left out (count 1, only field 1 present): no encoder skips a field
    short = rec[: head - 2] + struct.pack("<H", 1) + f1
    with pytest.raises(MalformedError, match=r"0, 1, 2, \.\.\. in order"):
        decode_record(schema, short + struct.pack("<I", crc32c.crc32c(short)))
    # a field count the record's version cannot have: v1 of this schema has two fields
    only_p = rec[: head - 2] + struct.pack("<H", 1) + f0
    with pytest.raises(SchemaMismatchError, match="reader's own version writes exactly its fields"):
        decode_record(schema, only_p + struct.pack("<I", crc32c.crc32c(only_p)))
    # ...but a v0 writer may well have had one field: the reader's required q is then missing
    v0 = only_p[: head - 6] + struct.pack("<I", 0) + only_p[head - 2 :]
    with pytest.raises(MissingFieldError):
        decode_record(schema, v0 + struct.pack("<I", crc32c.crc32c(v0)))
    # ...and so may a newer writer (v2) that dropped q (the registry's BACKWARD rule)
    v2 = only_p[: head - 6] + struct.pack("<I", 2) + only_p[head - 2 :]
    with pytest.raises(MissingFieldError):
        decode_record(schema, v2 + struct.pack("<I", crc32c.crc32c(v2)))


def test_every_bool_byte_is_checked_even_in_fields_the_reader_skips() -> None:
    v1 = IRSchema("s", 1, (IRSchemaField("x", "float", ()),))
    v2 = IRSchema("s", 2, (IRSchemaField("x", "float", ()), IRSchemaField("on", "bool", (2,), default=[True, True])))
    rec = bytearray(encode_record(v2, {"x": 1.0, "on": [True, False]}))
    assert decode_record(v1, bytes(rec)) == {"x": 1.0}  # the appended field is skipped...
    rec[-5] = 2  # ...but its bytes must still be canonical
    with pytest.raises(MalformedError, match="bool byte"):
        decode_record(v1, _recrc(bytes(rec)))


@pytest.mark.parametrize(
    ("ndim", "dims"),
    [(65, (0,) * 65), (4, (0, 2**32 - 1, 2**32 - 1, 2**32 - 1)), (4, (2**32 - 1, 2**32 - 1, 2**32 - 1, 0))],
    ids=["65 dims", "empty but huge", "huge but empty"],
)
def test_shapes_no_array_can_have_are_malformed(ndim: int, dims: tuple[int, ...]) -> None:
    """Zero-size arrays need no data bytes, so a short record can declare any shape: ones numpy
    cannot represent are refused as malformed (never a ValueError), in a field the reader skips too."""
    v1 = IRSchema("s", 1, (IRSchemaField("x", "float", ()),))
    body = encode_record(v1, {"x": 1.0})[:-4]
    body = body[:-14] + struct.pack("<H", 2) + body[-12:]  # count 2: one appended field
    body += struct.pack("<HBB", 1, 1, ndim) + struct.pack(f"<{ndim}I", *dims)
    with pytest.raises(MalformedError, match="dims|too large"):
        decode_record(v1, body + struct.pack("<I", crc32c.crc32c(body)))


def test_non_buffer_input_is_a_wire_error() -> None:
    with pytest.raises(WireError):
        decode_record(V1, "CATR")  # type: ignore[arg-type]


def test_large_record_round_trip() -> None:
    schema = IRSchema("big", 1, (IRSchemaField("x", "float", (1_000_000,)),))
    x = np.random.default_rng(0).normal(size=1_000_000)
    out = decode_record(schema, encode_record(schema, {"x": x}))
    assert np.array_equal(out["x"].view(np.uint64), x.view(np.uint64))
