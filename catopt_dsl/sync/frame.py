"""Protocol frames (``CATF``): a fixed 80-byte header, a payload of named arrays, a CRC32C trailer.

Layout (little-endian; ``docs/protocol.md`` is the normative description)::

    off  size  field
      0     4  magic "CATF"
      4     1  protocol version (1)
      5     1  message type (MsgType)
      6     2  flags (0; reserved)
      8    32  spec hash (raw sha256 of the plan's spec)
     40     4  schema id            44  4  schema version
     48     4  sender id            52  4  payload length P
     56     8  membership epoch     64  8  sequence number (per sender)
     72     8  round
     80     P  payload
   80+P     4  CRC32C over bytes [0, 80+P)

Payload: ``u32 entry count`` then, per entry sorted by the UTF-8 bytes of its name:
``u16 name length | name | u8 dtype | u8 ndim | ndim x u32 dims | zero padding to an 8-byte
boundary (from the frame start) | data``. dtype 1 f64, 2 i64, 3 bool (u8 0/1), 4 UTF-8 text
(ndim 1, dims[0] = byte length). The padding lets a receiver view float data in place.

Sorting the entries and zeroing the padding make the bytes a function of the message alone
(same message => same bytes), and the decoder rejects any other arrangement.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Union

import crc32c
import numpy as np

from catopt_dsl.wire.arrays import (
    DT_BOOL,
    DT_F64,
    DT_I64,
    DT_UTF8,
    I64_MAX,
    I64_MIN,
    ITEMSIZE,
    MAX_NDIM,
    Reader,
    array_from,
    check_bools,
    check_ndim,
    check_shape,
    coerce_array,
    data_view,
    nbytes_of,
    pack_dims,
    scalar_from,
)
from catopt_dsl.wire.errors import (
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

FRAME_MAGIC = b"CATF"
PROTOCOL_VERSION = 1
#: default cap on a frame's declared payload length (fits a 1e7-float Delta with room to spare)
DEFAULT_MAX_PAYLOAD = 256 * 1024 * 1024
#: the all-zero spec hash, for tests and plan-less toy runs
ZERO_HASH = bytes(32)

_HEADER = struct.Struct("<4sBBH32sIIIIQQQ")
HEADER_SIZE = _HEADER.size  # 80
_CRC = struct.Struct("<I")
FRAME_OVERHEAD = HEADER_SIZE + _CRC.size
_COUNT = struct.Struct("<I")
_NAME_LEN = struct.Struct("<H")
_DT_NDIM = struct.Struct("<BB")
_U64_MAX = 2**64 - 1
_U32_MAX = 2**32 - 1
_PAD = bytes(8)
_F64 = struct.Struct("<d")
_I64 = struct.Struct("<q")
_F64_LE = np.dtype("<f8")
#: packers of 0..8 u32 dims (more dims: the checked decoder)
_DIMS_UNPACK = [struct.Struct("<" + "I" * n) for n in range(9)]


class MsgType(IntEnum):
    """The message-type byte of a frame."""

    JOIN = 1
    LEAVE = 2
    DELTA = 3
    BROADCAST = 4
    ACK = 5
    SNAPSHOT = 6
    SNAPSHOT_REQUEST = 7


PayloadValue = Union[np.ndarray, float, int, bool, str]


@dataclass(frozen=True)
class Header:
    """The fixed part of every frame. ``seq`` is per sender; ``epoch`` is the sender's view."""

    msg_type: MsgType
    sender: int
    epoch: int
    seq: int
    round: int
    spec_hash: bytes = ZERO_HASH
    schema_id: int = 0
    schema_version: int = 0


@dataclass(frozen=True, eq=False)
class Frame:
    """A decoded (or to-be-encoded) frame: header plus named payload entries."""

    header: Header
    payload: Mapping[str, PayloadValue] = field(default_factory=dict)


def spec_hash_bytes(spec_hash_hex: str) -> bytes:
    """``IRPlan.spec_hash`` (sha256 hex) as the 32 raw bytes a frame carries."""
    raw = bytes.fromhex(spec_hash_hex)
    if len(raw) != 32:
        raise EncodeError("a spec hash must be 32 bytes (sha256)")
    return raw


def _check_range(name: str, value: int, hi: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 0 <= int(value) <= hi:
        raise EncodeError(f"header {name}={value!r} is out of range [0, {hi}]")


def _entry(name: str, value: PayloadValue, offset: int) -> tuple[list[bytes | memoryview], int, int]:
    """Encode one payload entry starting at frame offset ``offset``: (parts, length, crc-less)."""
    raw_name = name.encode("utf-8")
    if not raw_name or len(raw_name) > 0xFFFF:
        raise EncodeError(f"payload name {name!r}: must be 1..65535 UTF-8 bytes")
    dims: tuple[int, ...]
    data: bytes | memoryview
    # The common entries of a round (float scalars, contiguous float64 arrays) first: the same
    # bytes as the general path below, without its conversions. (Exact types: a bool is an int
    # and an np.float64 a float to isinstance, and both take the general path.)
    if type(value) is float:
        code, data, dims = DT_F64, _F64.pack(value), ()
    elif type(value) is np.ndarray and value.dtype == _F64_LE and value.flags.c_contiguous:
        code, dims, data = DT_F64, tuple(value.shape), data_view(value)
    elif type(value) is int and I64_MIN <= value <= I64_MAX:
        code, data, dims = DT_I64, _I64.pack(value), ()
    elif isinstance(value, str):
        code, data = DT_UTF8, memoryview(value.encode("utf-8"))
        dims = (len(data),)
    else:
        if isinstance(value, (bool, np.bool_)):
            code = DT_BOOL
        elif isinstance(value, (int, np.integer)):
            code = DT_I64
            if not I64_MIN <= int(value) <= I64_MAX:
                raise EncodeError(f"payload {name!r}: {value} does not fit int64")
        elif isinstance(value, (float, np.floating)):
            code = DT_F64
        else:
            arr0 = np.asarray(value)
            kind = arr0.dtype.kind
            code = DT_BOOL if kind == "b" else DT_I64 if kind in "iu" else DT_F64
        arr = coerce_array(value, code, f"payload {name!r}")
        dims = tuple(arr.shape)
        data = data_view(arr)
    if len(dims) > MAX_NDIM:
        raise EncodeError(f"payload {name!r}: more than {MAX_NDIM} dims")
    head = _NAME_LEN.pack(len(raw_name)) + raw_name + _DT_NDIM.pack(code, len(dims)) + pack_dims(dims)
    pad = (-(offset + len(head))) % 8
    parts: list[bytes | memoryview] = [head + _PAD[:pad], data]
    return parts, len(head) + pad + len(data), code


def encode_frame(frame: Frame) -> bytes:
    """Encode a frame to its canonical bytes (entries sorted by name, zero padding, CRC32C)."""
    h = frame.header
    try:
        msg_type = MsgType(h.msg_type)
    except ValueError:
        raise EncodeError(f"unknown message type {h.msg_type!r}") from None
    if not isinstance(h.spec_hash, (bytes, bytearray)) or len(h.spec_hash) != 32:
        raise EncodeError("spec_hash must be 32 raw bytes")
    for name, value, hi in (
        ("sender", h.sender, _U32_MAX),
        ("schema_id", h.schema_id, _U32_MAX),
        ("schema_version", h.schema_version, _U32_MAX),
        ("epoch", h.epoch, _U64_MAX),
        ("seq", h.seq, _U64_MAX),
        ("round", h.round, _U64_MAX),
    ):
        _check_range(name, value, hi)

    names = sorted(frame.payload, key=lambda k: k.encode("utf-8"))
    body: list[bytes | memoryview] = [_COUNT.pack(len(names))]
    offset = HEADER_SIZE + _COUNT.size
    for name in names:
        if not isinstance(name, str):
            raise EncodeError(f"payload names must be str, got {type(name).__name__}")
        parts, length, _code = _entry(name, frame.payload[name], offset)
        body.extend(parts)
        offset += length
    payload_len = offset - HEADER_SIZE
    if payload_len > _U32_MAX:
        raise EncodeError("payload longer than 4 GiB")
    header = _HEADER.pack(
        FRAME_MAGIC,
        PROTOCOL_VERSION,
        int(msg_type),
        0,
        bytes(h.spec_hash),
        int(h.schema_id),
        int(h.schema_version),
        int(h.sender),
        payload_len,
        int(h.epoch),
        int(h.seq),
        int(h.round),
    )
    crc = crc32c.crc32c(header)
    for part in body:
        crc = crc32c.crc32c(part, value=crc)
    return b"".join([header, *body, _CRC.pack(crc)])


def _check_header(buf: memoryview, max_payload: int) -> tuple[Any, ...]:
    n = len(buf)
    if n >= 4 and bytes(buf[:4]) != FRAME_MAGIC:
        raise BadMagicError("not a catopt frame (bad magic)")
    if n < 5:
        raise TruncatedError(f"frame of {n} bytes is shorter than its header")
    if buf[4] != PROTOCOL_VERSION:
        raise VersionError(f"protocol version {buf[4]} is not supported (expected {PROTOCOL_VERSION})")
    if n < HEADER_SIZE:
        raise TruncatedError(f"frame of {n} bytes is shorter than its {HEADER_SIZE}-byte header")
    fields = _HEADER.unpack(buf[:HEADER_SIZE])
    msg_type, flags, payload_len = fields[2], fields[3], fields[8]
    if msg_type not in MsgType._value2member_map_:
        raise UnknownMessageTypeError(f"unknown message type {msg_type}")
    if flags != 0:
        raise MalformedError(f"frame flags {flags:#x}: no flags are defined in protocol version 1")
    if payload_len > max_payload:
        raise TooLargeError(f"declared payload of {payload_len} bytes exceeds the cap of {max_payload}")
    return fields


def frame_length(prefix: bytes | bytearray | memoryview, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> int:
    """Total length of the frame whose (at least 80-byte) header starts ``prefix``.

    For stream transports: read 80 bytes, call this, then read the rest. Validates magic,
    version, type and the payload cap first, so a hostile length never drives an allocation.
    """
    buf = memoryview(prefix).cast("B")
    fields = _check_header(buf, max_payload)
    return FRAME_OVERHEAD + int(fields[8])


def decode_frame(
    data: bytes | bytearray | memoryview,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    copy: bool | None = None,
) -> Frame:
    """Decode exactly one frame.

    Rejects, each with its own :class:`WireError` subclass: bad magic, unsupported version,
    unknown type, a declared payload above ``max_payload`` (before reading it), a truncated or
    over-long input, a CRC mismatch, and any malformed or non-canonical payload.

    Arrays are ``np.frombuffer`` views into ``data`` (read-only) when ``data`` is immutable; they
    are copied when ``copy`` is true, or when ``copy`` is None and ``data`` is a writable buffer
    that its owner may reuse.
    """
    try:
        buf = memoryview(data).cast("B")
    except (TypeError, ValueError):
        raise MalformedError("frame input is not a byte buffer") from None
    fields = _check_header(buf, max_payload)
    _m, _v, msg_type, _f, spec_hash, schema_id, schema_version, sender, payload_len, epoch, seq, rnd = fields
    total = FRAME_OVERHEAD + payload_len
    if len(buf) < total:
        raise TruncatedError(f"frame declares {total} bytes, got {len(buf)}")
    if len(buf) > total:
        raise LengthError(f"{len(buf) - total} bytes after the end the frame declares")
    (stored,) = _CRC.unpack(buf[total - _CRC.size :])
    if crc32c.crc32c(buf[: total - _CRC.size]) != stored:
        raise ChecksumError("frame CRC32C mismatch")
    if copy is None:
        copy = not buf.readonly
    payload = _decode_payload_fast(buf, HEADER_SIZE, HEADER_SIZE + payload_len, copy)
    if payload is None:  # not the common shape, or not well-formed: the checked decoder says why
        try:
            payload = _decode_payload(Reader(buf, HEADER_SIZE, HEADER_SIZE + payload_len), copy)
        except TruncatedError as exc:
            # The CRC matched, so the frame is intact: an overrun inside it is a malformed payload.
            raise MalformedError(f"payload overruns its declared length: {exc}") from None
    header = Header(
        msg_type=MsgType(msg_type),
        sender=sender,
        epoch=epoch,
        seq=seq,
        round=rnd,
        spec_hash=bytes(spec_hash),
        schema_id=schema_id,
        schema_version=schema_version,
    )
    return Frame(header=header, payload=payload)


def _decode_payload(rd: Reader, copy: bool) -> dict[str, PayloadValue]:
    (count,) = rd.unpack(_COUNT, "payload entry count")
    # every entry takes at least 5 bytes: refuse absurd counts before looping over them
    if count * 5 > rd.end - rd.pos:
        raise MalformedError(f"payload declares {count} entries, too many for its length")
    out: dict[str, PayloadValue] = {}
    prev: bytes | None = None
    for _ in range(count):
        (name_len,) = rd.unpack(_NAME_LEN, "entry name length")
        raw_name = bytes(rd.take(name_len, "entry name"))
        if not raw_name:
            raise MalformedError("empty payload entry name")
        if prev is not None and raw_name <= prev:
            raise MalformedError("payload entries must be sorted by name, without duplicates")
        prev = raw_name
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedError("payload entry name is not valid UTF-8") from None
        code, ndim = rd.unpack(_DT_NDIM, f"entry {name!r} dtype")
        if code not in ITEMSIZE:
            raise MalformedError(f"entry {name!r}: unknown dtype code {code}")
        check_ndim(ndim, f"entry {name!r}")
        dims = rd.dims(ndim, f"entry {name!r} dims")
        check_shape(code, dims, f"entry {name!r}")
        pad = (-rd.pos) % 8
        if any(rd.take(pad, f"entry {name!r} padding")):
            raise MalformedError(f"entry {name!r}: non-zero padding")
        raw = rd.take(nbytes_of(code, dims), f"entry {name!r} data")
        if code == DT_BOOL:
            check_bools(raw, f"entry {name!r}")
        if code == DT_UTF8:
            if ndim != 1:
                raise MalformedError(f"entry {name!r}: text must have ndim 1")
            try:
                out[name] = bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedError(f"entry {name!r}: text is not valid UTF-8") from None
            continue
        arr = array_from(raw, code, dims, copy=copy and ndim > 0, what=f"entry {name!r}")
        out[name] = scalar_from(arr, code) if ndim == 0 else arr
    if rd.pos != rd.end:
        raise MalformedError(f"{rd.end - rd.pos} bytes after the last payload entry")
    return out


def _decode_payload_fast(buf: memoryview, pos: int, end: int, copy: bool) -> dict[str, PayloadValue] | None:
    """:func:`_decode_payload` for well-formed payloads of at most 8 dims per entry (every frame
    the protocol writes), with ``unpack_from`` instead of a reader object and scalars unpacked
    without numpy. Returns None at the first thing it does not accept -- anything malformed
    included -- and the caller runs the checked decoder, which accepts the same frames with the
    same values and names the fault of the others: this path adds speed, never a verdict."""
    try:
        if end - pos < 4:
            return None
        (count,) = _COUNT.unpack_from(buf, pos)
        pos += 4
        if count * 5 > end - pos:
            return None
        out: dict[str, PayloadValue] = {}
        prev = b""
        for _ in range(count):
            if pos + 2 > end:
                return None
            (name_len,) = _NAME_LEN.unpack_from(buf, pos)
            pos += 2
            if name_len == 0 or pos + name_len + 2 > end:
                return None
            raw_name = bytes(buf[pos : pos + name_len])
            pos += name_len
            if raw_name <= prev:  # unsorted or duplicate (an empty name was refused above)
                return None
            prev = raw_name
            name = raw_name.decode("utf-8")  # UnicodeDecodeError: a ValueError, caught below
            code, ndim = buf[pos], buf[pos + 1]
            pos += 2
            if code not in ITEMSIZE or ndim >= len(_DIMS_UNPACK) or pos + 4 * ndim > end:
                return None
            dims = _DIMS_UNPACK[ndim].unpack_from(buf, pos)
            pos += 4 * ndim
            pad = (-pos) % 8
            if pos + pad > end or any(buf[pos : pos + pad]):
                return None
            pos += pad
            nbytes = ITEMSIZE[code]
            bound = nbytes
            for d in dims:
                nbytes *= d
                bound *= d or 1
            if bound > I64_MAX or pos + nbytes > end:
                return None
            start = pos
            pos += nbytes
            if code == DT_UTF8:
                if ndim != 1:
                    return None
                out[name] = bytes(buf[start:pos]).decode("utf-8")
            elif ndim == 0:
                if code == DT_F64:
                    out[name] = _F64.unpack_from(buf, start)[0]
                elif code == DT_I64:
                    out[name] = _I64.unpack_from(buf, start)[0]
                elif buf[start] > 1:
                    return None
                else:
                    out[name] = bool(buf[start])
            else:
                raw = buf[start:pos]
                if code == DT_BOOL and nbytes and max(raw) > 1:
                    return None
                out[name] = array_from(raw, code, tuple(dims), copy=copy, what=f"entry {name!r}")
        return out if pos == end else None
    except (WireError, ValueError, IndexError, struct.error):
        return None
