"""Hostile wire input, built the same way every time: frames and records that the decoders of all
three languages (Python, and the generated Rust and C++) must accept or reject alike.

* :func:`frame_cases` / :func:`record_cases`: small, named cases, one per rule of the wire format
  (``docs/protocol.md``); ``make_vectors.py`` pins them as golden vectors with the error kind.
* :func:`frame_corpus` / :func:`record_corpus`: a few thousand inputs from a seeded generator --
  valid, mutated, truncated, length-lying, CRC-valid garbage -- for the fuzz comparison.

The outcome of one input (:func:`frame_outcome`, :func:`record_outcome`) is what every language
must report for it: ``ok`` (a frame that re-encodes to itself), ``ok <hex>`` (a record and what the
reader re-encodes), or the error kind (the Python ``WireError`` class without ``Error``).
"""

from __future__ import annotations

import random
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import crc32c
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # running as a script from a checkout
    sys.path.insert(0, str(ROOT))

from catopt_dsl.ir.model import IRSchema  # noqa: E402
from catopt_dsl.sync.frame import Frame, Header, MsgType, decode_frame, encode_frame  # noqa: E402
from catopt_dsl.sync.messages import (  # noqa: E402
    Ack,
    Broadcast,
    Delta,
    Envelope,
    Join,
    Leave,
    Snapshot,
    SnapshotRequest,
    encode_message,
)
from catopt_dsl.wire.errors import WireError  # noqa: E402
from catopt_dsl.wire.record import decode_record, encode_record  # noqa: E402

#: every frame of the corpus and of the vectors is decoded with this payload cap
MAX_PAYLOAD = 1 << 16
#: the spec hash of the corpus' valid frames (a protocol run with another hash drops them)
CORPUS_HASH = bytes(range(32))

_U32_MAX = 0xFFFF_FFFF


def recrc(data: bytes) -> bytes:
    """``data`` with its CRC32C trailer recomputed over everything before it."""
    body = data[:-4]
    return body + struct.pack("<I", crc32c.crc32c(body))


def kind_of(exc: WireError) -> str:
    name = type(exc).__name__
    return name.removesuffix("Error")


def frame_outcome(data: bytes) -> str:
    """``ok``, ``noncanonical`` (decoded, but re-encodes to other bytes) or the error kind."""
    try:
        frame = decode_frame(data, max_payload=MAX_PAYLOAD)
    except WireError as exc:
        return kind_of(exc)
    return "ok" if encode_frame(frame) == data else "noncanonical"


def record_outcome(reader: IRSchema, data: bytes) -> str:
    """``ok <hex of what the reader re-encodes>`` or the error kind."""
    try:
        values = decode_record(reader, data)
    except WireError as exc:
        return kind_of(exc)
    return "ok " + encode_record(reader, values).hex()


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------


def _env(sender: int = 3) -> Envelope:
    return Envelope(sender, 2, 5, 7, CORPUS_HASH, 1, 1)


def base_frames() -> dict[str, bytes]:
    """Valid frames: every message type, every dtype, empty arrays and payloads, UTF-8 names."""
    z = {"z": np.array([1.5, -0.0, np.inf])}
    frames = {
        "join": encode_message(Join(_env(), "node-\u00e9", 4)),
        "leave": encode_message(Leave(_env(), "")),
        "delta": encode_message(Delta(_env(), {"x:site[0].w": np.arange(6.0).reshape(2, 3)}, {"r": 0.5})),
        "broadcast": encode_message(Broadcast(_env(0), z, 2.0, (1, 3, 9))),
        "ack": encode_message(Ack(_env(0), 5, 2)),
        "snapshot": encode_message(Snapshot(_env(0), z, 1.0, (3,), {"u": np.zeros(2)}, 6, 2, 4)),
        "snapshot_request": encode_message(SnapshotRequest(_env(), 4)),
    }
    payload = {
        "b": np.array([[True, False], [False, True]]),
        "e": np.zeros((0, 3)),
        "i": np.array([-(2**63), 2**63 - 1, 0], dtype=np.int64),
        "k": 7,
        "nan": float("nan"),
        "t": "\u00fcber \u2603",
        "\u00e9": np.zeros((2, 0, 5), dtype=np.int64),
        "z": np.array([2.0]),
    }
    header = Header(MsgType.DELTA, 9, 1, 2, 3, CORPUS_HASH, 4, 5)
    frames["all_dtypes"] = encode_frame(Frame(header, payload))
    frames["empty_payload"] = encode_frame(Frame(header, {}))
    return frames


@dataclass(frozen=True)
class Entry:
    """Where one payload entry of a valid frame lies (offsets from the frame start)."""

    at: int  # its name length
    name: bytes
    code_at: int  # its dtype byte (ndim follows)
    dims_at: int
    ndim: int
    pad_at: int
    data_at: int
    end: int


def entries(frame: bytes) -> list[Entry]:
    """The layout of every payload entry of a frame that decodes."""
    (count,) = struct.unpack_from("<I", frame, 80)
    pos, out = 84, []
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", frame, pos)
        name = frame[pos + 2 : pos + 2 + name_len]
        code_at = pos + 2 + name_len
        code, ndim = frame[code_at], frame[code_at + 1]
        dims = struct.unpack_from(f"<{ndim}I", frame, code_at + 2)
        pad_at = code_at + 2 + 4 * ndim
        data_at = pad_at + (-pad_at) % 8
        end = data_at + int(np.prod(dims, dtype=np.int64)) * (8 if code in (1, 2) else 1)
        out.append(Entry(pos, name, code_at, code_at + 2, ndim, pad_at, data_at, end))
        pos = end
    return out


def with_payload(frame: bytes, payload: bytes) -> bytes:
    """``frame``'s header with another payload: its length field and the CRC made to match."""
    head = frame[:52] + struct.pack("<I", len(payload)) + frame[56:80]
    return recrc(head + payload + b"\0\0\0\0")


def one_entry(name: bytes, code: int, dims: tuple[int, ...], data: bytes) -> bytes:
    """A payload of one entry, written by hand (so that it may break the rules)."""
    head = struct.pack("<IH", 1, len(name)) + name + struct.pack("<BB", code, len(dims))
    head += struct.pack(f"<{len(dims)}I", *dims)
    return head + b"\0" * ((-(80 + len(head))) % 8) + data


def _set(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def frame_cases() -> Iterator[tuple[str, bytes, str]]:
    """(id, frame, what it tests): one case per rule of the frame format."""
    base = base_frames()
    for name, frame in base.items():
        yield f"valid_{name}", frame, f"a valid {name} frame"
    f = base["all_dtypes"]
    es = entries(f)
    by_name = {e.name: e for e in es}
    n = len(f)
    # header checks, in the decoder's order
    yield "bad_magic", b"CATX" + f[4:], "bad magic"
    for cut in (0, 3, 4, 79, 80, n - 5, n - 1):
        yield f"cut{cut}", f[:cut], f"cut to {cut} bytes"
    yield "version2", _set(f, 4, b"\x02"), "protocol version 2"
    yield "type0", _set(f, 5, b"\x00"), "message type 0"
    yield "type8", _set(f, 5, b"\x08"), "message type 8"
    yield "flags", _set(f, 6, b"\x01"), "non-zero flags"
    yield "too_large", _set(f, 52, struct.pack("<I", MAX_PAYLOAD + 1)), "declared payload over the cap"
    yield "length_short", _set(f, 52, struct.pack("<I", n - 85)), "declared payload one byte short"
    yield "length_long", _set(f, 52, struct.pack("<I", n - 83)), "declared payload one byte long"
    yield "trailing", f + b"\0", "one byte after the CRC"
    yield "checksum", _set(f, 100, bytes([f[100] ^ 4])), "one bit flipped, CRC not refreshed"
    # payload checks (the CRC is valid: each is a malformed payload)
    payload = f[80:-4]

    def edit(at: int, value: bytes) -> bytes:
        return recrc(_set(f, at, value))

    yield "count_absurd", edit(80, struct.pack("<I", _U32_MAX)), "an entry count the payload cannot hold"
    yield "count_plus_one", edit(80, struct.pack("<I", len(es) + 1)), "one entry more than the payload holds"
    yield "count_minus_one", edit(80, struct.pack("<I", len(es) - 1)), "bytes after the last entry"
    yield "no_entries", with_payload(f, b""), "a payload without its entry count"
    yield "name_overrun", edit(es[0].at, struct.pack("<H", 0xFFFF)), "a name running past the payload"
    e0 = es[0]
    yield "empty_name", with_payload(f, payload[:4] + b"\0\0" + payload[e0.at - 80 + 3 :]), "an empty entry name"
    yield "bad_utf8_name", edit(by_name["\u00e9".encode()].at + 2, b"\xff\xfe"), "an entry name that is not UTF-8"
    yield "unsorted", edit(es[1].at + 2, b"z"), "entries out of order"
    yield "duplicate", edit(es[1].at + 2, es[0].name), "two entries of one name"
    yield "dtype5", edit(e0.code_at, b"\x05"), "an unknown dtype code"
    padded = next(e for e in es if e.pad_at < e.data_at)
    yield "padding", edit(padded.pad_at, b"\x01"), "non-zero padding"
    yield "bool2", edit(by_name[b"b"].data_at, b"\x02"), "bool byte 2"
    e_t = by_name[b"t"]
    yield "text_bad_utf8", edit(e_t.data_at, b"\xff"), "text that is not UTF-8"
    yield "dims_overrun", edit(by_name[b"z"].dims_at, struct.pack("<I", 1 << 20)), "dims larger than the payload"
    # shapes no array can have, and text that is not 1-d: one entry, built by hand
    for label, dims in (
        ("ndim65", (0,) * 65),
        ("empty_huge", (0, _U32_MAX, _U32_MAX, _U32_MAX)),
        ("huge_empty", (_U32_MAX, _U32_MAX, _U32_MAX, 0)),
    ):
        yield f"shape_{label}", with_payload(f, one_entry(b"e", 1, dims, b"")), f"an empty float array of shape {dims[:4]}"
    yield "shape_ndim64", with_payload(f, one_entry(b"e", 1, (0,) * 64, b"")), "64 dims (the most allowed)"
    yield "text_ndim2", with_payload(f, one_entry(b"t", 4, (1, 1), b"x")), "text of 2 dims"
    yield "text_ndim0", with_payload(f, one_entry(b"t", 4, (), b"x")), "text of 0 dims"


def _mutations(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        i = rng.randrange(len(out))
        op = rng.choice(["flip", "set", "cut", "insert", "delete", "u32"])
        if op == "flip":
            out[i] ^= 1 << rng.randrange(8)
        elif op == "set":
            out[i] = rng.choice([0, 1, 2, 0x7F, 0x80, 0xFF])
        elif op == "cut":
            del out[i:]
        elif op == "insert":
            out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == "delete":
            del out[i : i + rng.randint(1, 8)]
        else:  # a length, count or dim that lies
            value = rng.choice([0, 1, 2, 255, 65535, 65536, _U32_MAX, rng.randrange(1 << 32)])
            out[i : i + 4] = struct.pack("<I", value)
    return bytes(out)


def frame_corpus(seed: int = 0, mutants: int = 60) -> dict[str, list[bytes]]:
    """Frames by category (deterministic for a seed)."""
    rng = random.Random(seed)
    valid = list(base_frames().values())
    cases = [data for _, data, _ in frame_cases()]
    mutated = []
    for frame in valid:
        for k in range(mutants):
            m = _mutations(rng, frame)
            mutated.append(recrc(m) if k % 2 and len(m) >= 4 else m)
    truncated = [frame[:cut] for frame in valid for cut in sorted({0, 4, 5, 80, 84, len(frame) // 2, len(frame) - 1})]
    lying = []
    for frame in valid:
        for value in (0, 4, len(frame) - 85, len(frame) - 83, MAX_PAYLOAD, MAX_PAYLOAD + 1, _U32_MAX):
            lying.append(_set(frame, 52, struct.pack("<I", value)))  # the declared length
            lying.append(recrc(_set(frame, 52, struct.pack("<I", value))))
        for e in entries(frame):
            for value in (0, 1, 2, 255, 0xFFFF):
                lying.append(recrc(_set(frame, e.at, struct.pack("<H", value))))  # a name length
            for value in (0, 1, 3, 64, 65, 255):
                lying.append(recrc(_set(frame, e.code_at + 1, bytes([value]))))  # ndim
            for k in range(e.ndim):
                for value in (0, 1, 7, 1 << 16, _U32_MAX):
                    lying.append(recrc(_set(frame, e.dims_at + 4 * k, struct.pack("<I", value))))  # a dim
        for value in (0, 1, 2, 1000, _U32_MAX):
            lying.append(recrc(_set(frame, 80, struct.pack("<I", value))))  # the entry count
    garbage = []
    for k in range(300):
        size = rng.choice([0, 1, 3, 4, 8, 16, 40, 100, 500])
        noise = bytes(rng.randrange(256) for _ in range(size))
        header = rng.choice(valid)
        if k % 3 == 0:
            garbage.append(with_payload(header, noise))  # a valid header, CRC-valid garbage behind it
        elif k % 3 == 1:
            count = struct.pack("<I", rng.randint(0, 4))
            garbage.append(with_payload(header, count + noise))
        else:
            garbage.append(recrc(noise + b"\0\0\0\0"))  # garbage with a valid CRC
    return {
        "valid": valid,
        "cases": cases,
        "mutated": mutated,
        "truncated": truncated,
        "lying": lying,
        "garbage": garbage,
    }


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


def record_corpus(
    samples: list[tuple[IRSchema, bytes]], seed: int = 0, mutants: int = 60
) -> list[tuple[IRSchema, bytes]]:
    """(reader, record) pairs: every sample (a schema and a valid record of it) read by every
    version of its schema -- as it is, mutated, truncated, with lying counts, versions, dims and
    indices -- and CRC-valid garbage."""
    rng = random.Random(seed)
    out: list[tuple[IRSchema, bytes]] = []
    schemas = list({s.key: s for s, _ in samples}.values())
    by_name: dict[str, list[IRSchema]] = {}
    for s in schemas:
        by_name.setdefault(s.name, []).append(s)
    for writer, data in samples:
        readers = by_name[writer.name]
        variants = [data]
        for k in range(mutants):
            m = _mutations(rng, data)
            variants.append(recrc(m) if k % 2 and len(m) >= 4 else m)
        variants += [data[:cut] for cut in sorted({0, 3, 4, 17, 18, len(data) // 2, len(data) - 1})]
        (name_len,) = struct.unpack_from("<H", data, 6)
        fields_at = 8 + name_len + 6
        for value in (0, 1, 2, 3, 0xFFFF):
            variants.append(recrc(_set(data, 8 + name_len + 4, struct.pack("<H", value))))  # field count
        for value in (0, 1, 2, 99, _U32_MAX):
            variants.append(recrc(_set(data, 8 + name_len, struct.pack("<I", value))))  # writer version
        if len(data) > fields_at + 4:
            for value in (0, 1, 2, 64, 65, 255):
                variants.append(recrc(_set(data, fields_at + 3, bytes([value]))))  # first field's ndim
            for value in (1, 5, 0xFFFF):
                variants.append(recrc(_set(data, fields_at, struct.pack("<H", value))))  # its index
        for reader in readers:
            out.extend((reader, v) for v in variants)
    for k in range(200):
        noise = bytes(rng.randrange(256) for _ in range(rng.choice([0, 4, 10, 18, 30, 80])))
        reader = rng.choice(schemas)
        head = b"CATR\x01\x00" + struct.pack("<H", len(reader.name)) + reader.name.encode()
        if k % 2:
            head += struct.pack("<IH", reader.version, rng.randint(0, 12))
        out.append((reader, recrc(head + noise + b"\0\0\0\0")))
    return out
