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


def _check_record(data: bytes) -> None:
    try:
        out = decode_record(SCHEMA, data)
    except WireError:
        return
    assert set(out) == {f.name for f in SCHEMA.fields}
    if _record_header_matches(data):
        # written by the reader's own version: the decoder accepts only what the encoder writes,
        # so re-encoding is the identity (no two accepted byte strings mean the same record)
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


_DIM = st.one_of(st.integers(0, 4), st.sampled_from([0xFFFF, 0xFFFF_FFFF]))


@st.composite
def crafted_payload(draw: st.DrawFn) -> bytes:
    """A structurally plausible payload with any names, dtypes, ndims (up to 255), dims (zero and
    huge ones included), padding and data: CRC-valid once framed, so every payload rule is reached."""
    count = draw(st.integers(0, 3))
    out = struct.pack("<I", draw(st.sampled_from([count, count + 1, 0xFFFF_FFFF])))
    for _ in range(count):
        name = draw(st.binary(min_size=0, max_size=3))
        ndim = draw(st.one_of(st.integers(0, 3), st.sampled_from([64, 65, 255])))
        dims = [draw(_DIM) for _ in range(min(ndim, 4))] + [0] * max(0, ndim - 4)
        head = struct.pack("<H", len(name)) + name + struct.pack("<BB", draw(st.integers(0, 5)), ndim)
        head += struct.pack(f"<{ndim}I", *dims)
        pad = (-(80 + len(out) + len(head))) % 8
        out += head + bytes([draw(st.sampled_from([0, 0, 1]))]) * pad + draw(st.binary(max_size=24))
    return out


@FUZZ
@given(crafted_payload(), st.integers(1, 7))
def test_crafted_frames(payload: bytes, msg_type: int) -> None:
    header = struct.pack("<4sBBH32sIIIIQQQ", b"CATF", 1, msg_type, 0, bytes(32), 0, 0, 1, len(payload), 0, 1, 0)
    _check_frame(_recrc(header + payload + b"\0\0\0\0"))


def _field_blocks(record: bytes) -> list[bytes]:
    """The field blocks (header, dims, data) of a valid record, in order."""
    pos = 8 + struct.unpack_from("<H", record, 6)[0] + 6
    blocks = []
    while pos < len(record) - 4:
        _index, code, ndim = struct.unpack_from("<HBB", record, pos)
        dims = struct.unpack_from(f"<{ndim}I", record, pos + 4)
        end = pos + 4 + 4 * ndim + int(np.prod(dims, dtype=np.int64)) * (1 if code == 3 else 8)
        blocks.append(record[pos:end])
        pos = end
    return blocks


BLOCKS = _field_blocks(RECORD)


@st.composite
def crafted_record(draw: st.DrawFn) -> bytes:
    """SCHEMA's valid field blocks, some left out, repeated or renumbered, a field appended by a
    "newer writer" (with any bool byte or shape), under any version and field count: CRC-valid, so
    the canonical-form rules are what decides."""
    picks = draw(st.lists(st.integers(0, len(BLOCKS) - 1), max_size=6))
    fields = []
    for k, i in enumerate(picks):
        index = draw(st.sampled_from([k, k, k, i, k + 1]))
        fields.append(struct.pack("<H", index) + BLOCKS[i][2:])
    if draw(st.booleans()):
        ndim = draw(st.sampled_from([1, 1, 65]))
        dims = (2,) if ndim == 1 else (0,) * ndim
        data = bytes([draw(st.sampled_from([0, 1, 2])), 1]) if ndim == 1 else b""
        fields.append(struct.pack("<HBB", len(fields), 3, ndim) + struct.pack(f"<{ndim}I", *dims) + data)
    count = draw(st.sampled_from([len(fields), len(fields), len(fields) + 1, max(0, len(fields) - 1)]))
    name = SCHEMA.name.encode()
    head = b"CATR\x01\x00" + struct.pack("<H", len(name)) + name + struct.pack("<IH", draw(st.integers(1, 3)), count)
    return _recrc(head + b"".join(fields) + b"\0\0\0\0")


@FUZZ
@given(crafted_record())
def test_crafted_records(data: bytes) -> None:
    _check_record(data)
