"""Frame and message codec: layout, round trips, determinism, zero-copy decode, typed errors."""

from __future__ import annotations

import struct

import crc32c
import numpy as np
import pytest

from catopt_dsl.sync.frame import (
    HEADER_SIZE,
    Frame,
    Header,
    MsgType,
    decode_frame,
    encode_frame,
    frame_length,
    spec_hash_bytes,
)
from catopt_dsl.sync.messages import (
    Ack,
    AckStatus,
    Broadcast,
    Delta,
    Envelope,
    Join,
    Leave,
    Snapshot,
    SnapshotRequest,
    decode_message,
    encode_message,
    from_frame,
)
from catopt_dsl.wire import (
    BadMagicError,
    ChecksumError,
    EncodeError,
    LengthError,
    MalformedError,
    TooLargeError,
    TruncatedError,
    UnknownMessageTypeError,
    VersionError,
    WireError,
)

HASH = spec_hash_bytes("ab" * 32)
ENV = Envelope(sender=7, epoch=3, seq=41, round=12, spec_hash=HASH, schema_id=2, schema_version=5)


def _recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", crc32c.crc32c(body))


def _frame() -> Frame:
    return Frame(
        Header(MsgType.DELTA, 7, 3, 41, 12, HASH, 2, 5),
        {
            "x:site[3].w": np.arange(5, dtype=np.float64) * 0.5,
            "i": np.array([[-(2**63), 2**63 - 1]], dtype=np.int64),
            "b": np.array([True, False, True]),
            "e": np.zeros((0, 4)),
            "s": -0.0,
            "n": 2**40,
            "t": True,
            "txt": "héllo",
        },
    )


def test_header_layout() -> None:
    data = encode_frame(_frame())
    magic, ver, typ, flags, h, sid, sver, sender, plen, epoch, seq, rnd = struct.unpack_from("<4sBBH32sIIIIQQQ", data)
    assert (magic, ver, typ, flags, h) == (b"CATF", 1, int(MsgType.DELTA), 0, HASH)
    assert (sid, sver, sender, epoch, seq, rnd) == (2, 5, 7, 3, 41, 12)
    assert len(data) == HEADER_SIZE + plen + 4 == frame_length(data[:HEADER_SIZE])
    assert struct.unpack("<I", data[-4:])[0] == crc32c.crc32c(data[:-4])
    (count,) = struct.unpack_from("<I", data, HEADER_SIZE)
    assert count == 8


def test_round_trip_and_value_types() -> None:
    fr = _frame()
    out = decode_frame(encode_frame(fr))
    assert out.header == fr.header
    assert list(out.payload) == sorted(fr.payload, key=lambda k: k.encode())
    for k, v in fr.payload.items():
        got = out.payload[k]
        if isinstance(v, np.ndarray):
            assert got.dtype == v.dtype and got.shape == v.shape
            np.testing.assert_array_equal(got, v)
        else:
            assert type(got) is type(v) and got == v
    assert struct.pack("<d", out.payload["s"]) == struct.pack("<d", -0.0)


def test_same_message_same_bytes() -> None:
    fr = _frame()
    shuffled = Frame(fr.header, dict(reversed(list(fr.payload.items()))))
    a, b = encode_frame(fr), encode_frame(shuffled)
    assert a == b
    assert encode_frame(decode_frame(a)) == a


def test_float_data_is_aligned_and_decoded_without_copy() -> None:
    x = np.random.default_rng(1).normal(size=1001)
    data = encode_frame(Frame(Header(MsgType.DELTA, 1, 0, 1, 0), {"odd-name": x, "a": np.ones(3, dtype=bool)}))
    view = decode_frame(data).payload["odd-name"]
    assert isinstance(view, np.ndarray) and not view.flags.writeable and not view.flags.owndata
    assert np.shares_memory(view, np.frombuffer(data, dtype=np.uint8))
    offset = view.__array_interface__["data"][0] - np.frombuffer(data, np.uint8).__array_interface__["data"][0]
    assert offset % 8 == 0
    copied = decode_frame(bytearray(data)).payload["odd-name"]  # a reusable buffer: copied
    assert copied.flags.writeable and copied.flags.owndata
    np.testing.assert_array_equal(copied, x)


def test_every_message_type_round_trips() -> None:
    z = {"z:cap": np.array([1.0, 2.0]), "z:s": np.array(3.0)}
    msgs = [
        Join(ENV, "site[3]", 2),
        Leave(ENV, "bye"),
        Delta(ENV, {"x:site[3].w": np.arange(3.0)}, {"primal": 0.25}),
        Broadcast(ENV, z, 1.5, (1, 2, 9)),
        Ack(ENV, 40, 2, AckStatus.DUPLICATE),
        Snapshot(ENV, z, 2.0, (2, 1), {"s": np.array([4.0])}, 6, 3, 1),
        SnapshotRequest(ENV, 5),
    ]
    for msg in msgs:
        data = encode_message(msg)
        back = decode_message(data)
        assert type(back) is type(msg) and back.env == msg.env
        assert encode_message(back) == data
    b = decode_message(encode_message(msgs[3]))
    assert isinstance(b, Broadcast) and b.members == (1, 2, 9) and b.rho == 1.5
    np.testing.assert_array_equal(b.z["z:cap"], [1.0, 2.0])
    s = decode_message(encode_message(msgs[5]))
    assert isinstance(s, Snapshot) and s.members == (1, 2) and s.next_seq == 6 and float(s.state["s"][0]) == 4.0
    d = decode_message(encode_message(msgs[2]))
    assert isinstance(d, Delta) and d.residuals == {"primal": 0.25}


def test_message_errors() -> None:
    with pytest.raises(EncodeError):
        encode_message(Delta(ENV, {"$rho": np.zeros(1)}))
    with pytest.raises(EncodeError):
        encode_frame(Frame(Header(MsgType.ACK, 2**32, 0, 0, 0)))
    with pytest.raises(EncodeError):
        encode_frame(Frame(Header(MsgType.ACK, 1, -1, 0, 0)))
    with pytest.raises(MalformedError):  # an Ack without its entries
        from_frame(Frame(Header(MsgType.ACK, 1, 0, 0, 0), {}))
    with pytest.raises(MalformedError):  # a Broadcast whose members are not ints
        from_frame(Frame(Header(MsgType.BROADCAST, 1, 0, 0, 0), {"$rho": 1.0, "$members": np.array([1.5])}))
    with pytest.raises(MalformedError):  # integer application data in a Delta
        decode_message(encode_frame(Frame(Header(MsgType.DELTA, 1, 0, 0, 0), {"x": np.array([1, 2])})))


def test_header_errors() -> None:
    data = encode_frame(_frame())
    with pytest.raises(BadMagicError):
        decode_frame(b"CATX" + data[4:])
    with pytest.raises(VersionError):
        decode_frame(data[:4] + b"\x09" + data[5:])
    with pytest.raises(UnknownMessageTypeError):
        decode_frame(_recrc(data[:5] + b"\x63" + data[6:]))
    with pytest.raises(MalformedError):
        decode_frame(_recrc(data[:6] + b"\x01\x00" + data[8:]))
    with pytest.raises(ChecksumError):
        decode_frame(data[:-5] + bytes([data[-5] ^ 0x10]) + data[-4:])
    with pytest.raises(LengthError):
        decode_frame(data + b"\x00")


def test_every_truncation_is_a_truncated_error() -> None:
    data = encode_frame(_frame())
    for cut in range(len(data)):
        with pytest.raises(TruncatedError):
            decode_frame(data[:cut])


def test_declared_length_over_the_cap_is_refused_before_reading() -> None:
    hdr = bytearray(encode_frame(Frame(Header(MsgType.LEAVE, 1, 0, 0, 0), {}))[:HEADER_SIZE])
    struct.pack_into("<I", hdr, 52, 0xFFFF_FFFF)
    with pytest.raises(TooLargeError):
        decode_frame(bytes(hdr) + bytes(4))
    with pytest.raises(TooLargeError):
        frame_length(bytes(hdr), max_payload=1024)
    with pytest.raises(TruncatedError):  # under a large cap, it is merely short
        decode_frame(bytes(hdr) + bytes(4), max_payload=2**33)


def _payload_frame(payload: bytes) -> bytes:
    hdr = struct.pack("<4sBBH32sIIIIQQQ", b"CATF", 1, int(MsgType.DELTA), 0, bytes(32), 0, 0, 1, len(payload), 0, 1, 0)
    body = hdr + payload
    return body + struct.pack("<I", crc32c.crc32c(body))


def _entry(name: bytes, code: int, dims: tuple[int, ...], data: bytes, start: int, pad_byte: int = 0) -> bytes:
    head = (
        struct.pack("<H", len(name)) + name + struct.pack("<BB", code, len(dims)) + struct.pack(f"<{len(dims)}I", *dims)
    )
    pad = (-(start + len(head))) % 8
    return head + bytes([pad_byte]) * pad + data


def test_malformed_payloads_with_valid_checksums() -> None:
    one = struct.pack("<d", 1.0)
    start = HEADER_SIZE + 4
    ok = _payload_frame(struct.pack("<I", 1) + _entry(b"a", 1, (1,), one, start))
    assert decode_frame(ok).payload["a"][0] == 1.0
    e_a = _entry(b"a", 1, (1,), one, start)
    e_b = _entry(b"b", 1, (1,), one, start + len(e_a))
    assert decode_frame(_payload_frame(struct.pack("<I", 2) + e_a + e_b)).payload["b"][0] == 1.0
    e_b_first = _entry(b"b", 1, (1,), one, start)
    e_a_second = _entry(b"a", 1, (1,), one, start + len(e_b_first))
    cases = {
        "unsorted": struct.pack("<I", 2) + e_b_first + e_a_second,
        "duplicate": struct.pack("<I", 2) + e_a + _entry(b"a", 1, (1,), one, start + len(e_a)),
        "nonzero padding": struct.pack("<I", 1) + _entry(b"a", 1, (1,), one, start, pad_byte=1),
        "unknown dtype": struct.pack("<I", 1) + _entry(b"a", 9, (1,), one, start),
        "bad utf8 name": struct.pack("<I", 1) + _entry(b"\xff", 1, (1,), one, start),
        "empty name": struct.pack("<I", 1) + _entry(b"", 1, (1,), one, start),
        "overrun": struct.pack("<I", 1) + _entry(b"a", 1, (2,), one, start),
        "trailing": struct.pack("<I", 1) + e_a + b"\x00",
        "huge count": struct.pack("<I", 0xFFFF_FFFF) + e_a,
        "text ndim 2": struct.pack("<I", 1) + _entry(b"a", 4, (1, 1), b"x", start),
        "bool byte": struct.pack("<I", 1) + _entry(b"a", 3, (1,), b"\x05", start),
        # shapes no array can have, though they hold no data (numpy refused them with a ValueError)
        "65 dims": struct.pack("<I", 1) + _entry(b"a", 1, (0,) * 65, b"", start),
        "empty but huge": struct.pack("<I", 1) + _entry(b"a", 1, (0, 2**32 - 1, 2**32 - 1, 2**32 - 1), b"", start),
        "huge but empty": struct.pack("<I", 1) + _entry(b"a", 1, (2**32 - 1, 2**32 - 1, 2**32 - 1, 0), b"", start),
    }
    for why, payload in cases.items():
        with pytest.raises(MalformedError):
            decode_frame(_payload_frame(payload))
        assert why


def test_bit_flips_never_escape_as_other_exceptions() -> None:
    data = encode_message(Broadcast(ENV, {"z": np.arange(4.0)}, 1.0, (1, 2)))
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x41
        with pytest.raises(WireError):
            decode_message(bytes(bad))


def test_an_empty_entry_whose_dims_overflow_numpy_is_malformed() -> None:
    """Found by the atheris harness: dims (0, 3187671040, 1117428378, 0) hold no data, but numpy
    cannot represent the shape; that is a MalformedError, not a ValueError."""
    import base64
    import struct

    import crc32c

    from catopt_dsl.wire.errors import MalformedError

    data = base64.b64decode(
        "Q0NBVEYBBAAAAAAAAAC+mpqamkNBVEYBmpqaVpqampqatJqampqampqampqampqampqamppCAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAAAQAAAAIAVEYBBAAAAAAAAAC+mpqaQgAAAAAAAAAAAAAAAACampqa8fHxmpiampqampqampqa8fHxmphURgAAmpqamppGKA=="
    )
    body = data[1:-4]
    with pytest.raises(MalformedError, match="too large"):
        decode_frame(body + struct.pack("<I", crc32c.crc32c(body)), max_payload=1 << 16)
def test_crafted_frames_are_dropped_and_counted_by_both_receivers() -> None:
    """CRC-valid frames that numpy cannot represent once raised a ValueError out of decode_frame, and
    receive() crashed on them before the spec-hash check; now each is dropped and counted."""
    from catopt_dsl.sync.protocol import CoordinatorProtocol, NodeProtocol, SyncSettings
    from catopt_dsl.sync.toy import AveragingCoordinator, AveragingNode

    start = HEADER_SIZE + 4
    crafted = [
        _payload_frame(struct.pack("<I", 1) + _entry(b"a", 1, dims, b"", start))
        for dims in ((0,) * 65, (0, 2**32 - 1, 2**32 - 1, 2**32 - 1))
    ]
    settings = SyncSettings(spec_hash=HASH)
    coordinator = CoordinatorProtocol(AveragingCoordinator(), settings)
    coordinator.start(0)
    node = NodeProtocol(1, "n1", AveragingNode(1.0), settings)
    node.start(0)
    for now, data in enumerate(crafted, start=1):
        with pytest.raises(MalformedError):
            decode_message(data)
        assert coordinator.receive(data, now) == [] and node.receive(data, now) == []
    for stats in (coordinator.stats, node.stats):
        assert stats.undecodable == 2 and stats.errors == {"MalformedError": 2}


# ---------------------------------------------------------------------------------------------
# The fast paths (common entry types on encode, well-formed payloads on decode) agree with the
# general ones: same bytes, same values, and never a verdict of their own on a bad frame.
# ---------------------------------------------------------------------------------------------


def _checked_payload(data: bytes) -> dict[str, object]:
    from catopt_dsl.sync.frame import _decode_payload
    from catopt_dsl.wire.arrays import Reader

    buf = memoryview(data).cast("B")
    (length,) = struct.unpack_from("<I", data, 52)
    return _decode_payload(Reader(buf, HEADER_SIZE, HEADER_SIZE + length), False)


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    return type(a) is type(b) and (a == b or (a != a and b != b))  # NaN == NaN here


def test_fast_encoding_writes_the_bytes_of_the_general_one() -> None:
    h = Header(MsgType.DELTA, 7, 3, 41, 12, HASH, 2, 5)
    nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]  # a NaN with a payload
    fast = {"a": 1.5, "b": -0.0, "c": nan, "d": np.arange(6.0).reshape(2, 3), "e": np.zeros(0), "f": 2**62,
            "g": -(2**63), "h": np.arange(7.0)[::2].copy(), "z": float("inf")}
    general = {"a": np.float64(1.5), "b": np.float64(-0.0), "c": np.float64(nan), "d": np.arange(6.0).reshape(2, 3).tolist(),
               "e": np.zeros(0, dtype=np.float32), "f": np.int64(2**62), "g": np.int64(-(2**63)),
               "h": np.arange(7.0)[::2], "z": np.float64("inf")}  # a strided view: copied by the general path
    assert encode_frame(Frame(h, fast)) == encode_frame(Frame(h, general))
    with pytest.raises(EncodeError, match="does not fit int64"):
        encode_frame(Frame(h, {"n": 2**63}))  # out of range: the general path's error


def test_fast_decoding_gives_the_values_of_the_checked_decoder() -> None:
    from catopt_dsl.sync.frame import _decode_payload_fast

    frames = [encode_frame(_frame())]
    frames += [encode_message(m) for m in (
        Join(ENV, "node-7", 3, 9), Leave(ENV, "bye"), Ack(ENV, 40, 2, AckStatus.DUPLICATE), SnapshotRequest(ENV, 4),
        Delta(ENV, {"x:a": np.arange(3.0), "x:b": np.zeros(0)}, {"f:a": 1.25, "g:a": float("nan")}),
        Broadcast(ENV, {"d:1": np.ones(4)}, 0.5, (1, 2, 9)),
        Snapshot(ENV, {"d:1": np.ones(2)}, 2.0, (1,), {"w:a": np.arange(2.0)}, 5, 3, 2),
    )]
    for data in frames:
        buf = memoryview(data).cast("B")
        (length,) = struct.unpack_from("<I", data, 52)
        got = _decode_payload_fast(buf, HEADER_SIZE, HEADER_SIZE + length, False)
        want = _checked_payload(data)
        assert got is not None and list(got) == list(want)
        assert all(_same(got[k], want[k]) for k in want), data
        assert all(not v.flags.writeable for v in got.values() if isinstance(v, np.ndarray))  # views, no copy


def test_fast_decoding_declines_every_corrupted_payload_the_checked_decoder_refuses() -> None:
    """Every single-byte change of a payload (CRC fixed up): the fast path returns the checked
    decoder's values or None (then decode_frame raises the checked decoder's error)."""
    from catopt_dsl.sync.frame import _decode_payload_fast

    data = encode_frame(_frame())
    (length,) = struct.unpack_from("<I", data, 52)
    for i in range(HEADER_SIZE, HEADER_SIZE + length):
        for value in (0x00, 0x01, 0x02, 0x7F, 0xFF):
            raw = bytearray(data)
            raw[i] = value
            bad = _recrc(bytes(raw))
            fast = _decode_payload_fast(memoryview(bad).cast("B"), HEADER_SIZE, HEADER_SIZE + length, False)
            try:
                want = _checked_payload(bad)
            except WireError:
                assert fast is None, (i, value)
                with pytest.raises(WireError):
                    decode_frame(bad)
                continue
            assert fast is None or (list(fast) == list(want) and all(_same(fast[k], want[k]) for k in want)), (i, value)
