"""Hypothesis fuzzing: random and mutated records and frames raise nothing but WireError, and any
input that does decode is canonical (re-encoding it gives the same bytes)."""

from __future__ import annotations

import struct

import crc32c
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catopt_dsl.ir.model import IRSchema, IRSchemaField
from catopt_dsl.sync.frame import Frame, Header, MsgType, decode_frame, encode_frame
from catopt_dsl.sync.messages import Broadcast, Delta, Envelope, decode_message, encode_message
from catopt_dsl.wire import WireError, decode_record, encode_record

SCHEMA = IRSchema(
    "usage",
    2,
    (
        IRSchemaField("gpu", "float", (3,)),
        IRSchemaField("n", "int", ()),
        IRSchemaField("on", "bool", (2,), default=[True, False]),
        IRSchemaField("m", "float", (2, 0), default=[[], []]),
    ),
)
RECORD = encode_record(SCHEMA, {"gpu": [1.0, float("nan"), -0.0], "n": -5})
FRAMES = [
    encode_frame(
        Frame(
            Header(MsgType.DELTA, 3, 2, 9, 4),
            {"x": np.array([1.0, 2.0]), "k": 7, "t": "ok", "b": np.array([[True]]), "e": np.zeros((0,), np.int64)},
        )
    ),
    encode_message(Broadcast(Envelope(0, 1, 2, 3), {"z": np.arange(3.0)}, 1.0, (1, 4))),
    encode_message(Delta(Envelope(5, 1, 2, 3), {"x:a": np.ones((2, 2))}, {"r": 0.5})),
]

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _recrc(data: bytes) -> bytes:
    if len(data) < 4:
        return data
    body = data[:-4]
    return body + struct.pack("<I", crc32c.crc32c(body))


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.sampled_from([0, 1, 2, 0x7F, 0x80, 0xFF]))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[i : i + draw(st.integers(1, 8))]
    out = bytes(data)
    # half the time repair the CRC, so the fuzz reaches the structural checks behind it
    return _recrc(out) if draw(st.booleans()) else out


def _record_header_matches(data: bytes) -> bool:
    name = SCHEMA.name.encode()
    head = (
        b"CATR\x01\x00" + struct.pack("<H", len(name)) + name + struct.pack("<IH", SCHEMA.version, len(SCHEMA.fields))
    )
    return data.startswith(head)


def _field_indices(data: bytes) -> list[int]:
    """Field indices of a record that decoded fine (so its structure is known to be valid)."""
    pos = 8 + struct.unpack_from("<H", data, 6)[0]
    (count,) = struct.unpack_from("<H", data, pos + 4)
    pos += 6
    out = []
    for _ in range(count):
        index, code, ndim = struct.unpack_from("<HBB", data, pos)
        dims = struct.unpack_from(f"<{ndim}I", data, pos + 4)
        pos += 4 + 4 * ndim + int(np.prod(dims, dtype=np.int64)) * (1 if code == 3 else 8)
        out.append(index)
    return out


def _check_record(data: bytes) -> None:
    try:
        out = decode_record(SCHEMA, data)
    except WireError:
        return
    assert set(out) == {f.name for f in SCHEMA.fields}
    if _record_header_matches(data) and _field_indices(data) == list(range(len(SCHEMA.fields))):
        # every field present and known, same schema: decoding is injective, so re-encoding is
        # the identity (no two accepted byte strings mean the same record)
        assert encode_record(SCHEMA, out) == data


def _check_frame(data: bytes) -> None:
    try:
        fr = decode_frame(data)
    except WireError:
        return
    assert encode_frame(fr) == data
    try:
        decode_message(data)
    except WireError:
        pass


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_records(data: bytes) -> None:
    _check_record(data)
    _check_record(b"CATR\x01\x00" + data)


@FUZZ
@given(mutated(RECORD))
def test_mutated_records(data: bytes) -> None:
    _check_record(data)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_frames(data: bytes) -> None:
    _check_frame(data)
    _check_frame(_recrc(b"CATF\x01\x03\x00\x00" + data))


@FUZZ
@given(st.sampled_from(range(len(FRAMES))).flatmap(lambda i: mutated(FRAMES[i])))
def test_mutated_frames(data: bytes) -> None:
    _check_frame(data)
