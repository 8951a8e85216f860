"""Schema records: one morphism payload (an ``IRSchema`` instance) as canonical bytes.

Layout (little-endian; ``docs/protocol.md`` is the normative description)::

    "CATR" | u8 format version (1) | u8 flags (0) | u16 name length | name (UTF-8)
    | u32 schema version | u16 field count
    | field*  (u16 declaration index | u8 dtype | u8 ndim | ndim x u32 dims | raw data)
    | u32 CRC32C over every byte before it

Fields are written in declaration-index order and identified by that index, never by name:
schema evolution may only append fields (with defaults), so index ``i`` means the same field in
every version. The encoder always writes every field of its schema, so for a given schema and
values the bytes are unique; the decoder rejects anything the encoder could not have produced
(indices other than 0, 1, 2, ... in order, bool bytes other than 0/1, non-zero flags, shapes no
array can have, a field count its version cannot have), which makes ``encode(decode(b)) == b``
for every record the reader's own version accepts.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import crc32c
import numpy as np

from catopt_dsl.ir.model import IRSchema, IRSchemaField
from catopt_dsl.wire.arrays import (
    DT_BOOL,
    ITEMSIZE,
    SCHEMA_DTYPE_CODE,
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
    MissingFieldError,
    SchemaMismatchError,
    TruncatedError,
    VersionError,
)

RECORD_MAGIC = b"CATR"
RECORD_FORMAT_VERSION = 1

_HEAD = struct.Struct("<4sBBH")  # magic, version, flags, name length
_VER_COUNT = struct.Struct("<IH")  # schema version, field count
_FIELD = struct.Struct("<HBB")  # index, dtype, ndim
_CRC = struct.Struct("<I")
#: the smallest possible record: empty name, no fields
MIN_RECORD_SIZE = _HEAD.size + _VER_COUNT.size + _CRC.size


def _field_code(field: IRSchemaField) -> int:
    try:
        return SCHEMA_DTYPE_CODE[field.dtype]
    except KeyError:
        raise EncodeError(f"field {field.name!r}: unsupported schema dtype {field.dtype!r}") from None


def _check_shape(field: IRSchemaField, arr: np.ndarray, what: str) -> None:
    if tuple(arr.shape) != tuple(field.shape):
        raise EncodeError(f"{what}: shape {tuple(arr.shape)} does not match the schema's {tuple(field.shape)}")


def encode_record(schema: IRSchema, values: Mapping[str, Any]) -> bytes:
    """Encode ``values`` as a record of ``schema``.

    Missing fields take their schema default; a missing field without a default, a name the
    schema does not declare, or a value of the wrong dtype or shape raises :class:`WireError`
    (:class:`MissingFieldError` / :class:`EncodeError`). Arrays are written with one vectorised
    conversion each (no per-element Python work), so records carrying 1e7 floats are cheap.
    """
    declared = {f.name for f in schema.fields}
    unknown = sorted(k for k in values if k not in declared)
    if unknown:
        raise EncodeError(f"schema {schema.key} has no field(s) {', '.join(map(repr, unknown))}")
    if len(schema.fields) > 0xFFFF:
        raise EncodeError(f"schema {schema.key} has more than 65535 fields")
    name = schema.name.encode("utf-8")
    if len(name) > 0xFFFF:
        raise EncodeError("schema name longer than 65535 bytes")
    if not 0 <= schema.version <= 0xFFFF_FFFF:
        raise EncodeError(f"schema version {schema.version} does not fit a u32")

    parts: list[bytes | memoryview] = [
        _HEAD.pack(RECORD_MAGIC, RECORD_FORMAT_VERSION, 0, len(name)),
        name,
        _VER_COUNT.pack(schema.version, len(schema.fields)),
    ]
    for index, field in enumerate(schema.fields):
        what = f"{schema.key}.{field.name}"
        if field.name in values:
            value = values[field.name]
        elif field.default is not None:
            value = field.default
        else:
            raise MissingFieldError(f"{what}: required field missing (it has no default)")
        code = _field_code(field)
        arr = coerce_array(value, code, what)
        _check_shape(field, arr, what)
        parts.append(_FIELD.pack(index, code, arr.ndim) + pack_dims(tuple(arr.shape)))
        parts.append(data_view(arr))
    # CRC incrementally over the parts, then one join: the payload is copied exactly once.
    crc = 0
    for part in parts:
        crc = crc32c.crc32c(part, value=crc)
    parts.append(_CRC.pack(crc))
    return b"".join(parts)


def _default_value(field: IRSchemaField, what: str) -> Any:
    code = _field_code(field)
    arr = coerce_array(field.default, code, what)
    _check_shape(field, arr, what)
    if arr.ndim == 0:
        return scalar_from(arr.view(np.bool_) if code == 3 else arr, code)
    return arr.view(np.bool_).copy() if code == 3 else arr.copy()


def _check_field_count(schema: IRSchema, record_version: int, count: int) -> None:
    """A writer of the reader's own version wrote exactly the reader's fields (the canonical form).

    Across versions the count is free: a reader fills the fields an older writer lacked from their
    defaults and skips the ones it does not know, so a later version may also drop trailing fields
    (the schema registry's BACKWARD rule, docs/registry.md); within one spec, E0406 keeps versions
    append-only.
    """
    known = len(schema.fields)
    if record_version == schema.version and count != known:
        raise SchemaMismatchError(
            f"a v{record_version} record of {schema.name!r} holds {count} fields, but v{schema.version} "
            f"has {known}: a writer of the reader's own version writes exactly its fields"
        )


def decode_record(schema: IRSchema, data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode a record written for (any version of) ``schema``.

    Returns field name -> value: ``float``/``int``/``bool`` for scalars, owned numpy arrays
    (float64, int64, bool) otherwise. Fields the writer did not know (appended in a later version)
    take their defaults; fields the reader does not know (a newer writer) are skipped using their
    dims. Any bad input raises a :class:`WireError` subclass; nothing is allocated beyond the
    input's own size.
    """
    try:
        buf = memoryview(data).cast("B")
    except (TypeError, ValueError):
        raise MalformedError("record input is not a byte buffer") from None
    n = len(buf)
    if n >= 4 and bytes(buf[:4]) != RECORD_MAGIC:
        raise BadMagicError("not a schema record (bad magic)")
    if n < MIN_RECORD_SIZE:
        raise TruncatedError(f"record of {n} bytes is shorter than the minimum {MIN_RECORD_SIZE}")
    # The structure is parsed (bounds-checked, against everything but the CRC trailer) before the
    # CRC is checked: the header's field count makes any cut record overrun, so truncation is
    # reported as such rather than as a checksum mismatch.
    rd = Reader(buf, 0, n - _CRC.size)
    _magic, version, flags, name_len = rd.unpack(_HEAD, "record header")
    if version != RECORD_FORMAT_VERSION:
        raise VersionError(f"record format version {version} is not supported (expected {RECORD_FORMAT_VERSION})")
    if flags != 0:
        raise MalformedError(f"record flags {flags:#x}: no flags are defined in format version 1")
    name = rd.utf8(name_len, "schema name")
    record_version, count = rd.unpack(_VER_COUNT, "record header")

    fields = schema.fields
    raw_fields: dict[int, tuple[int, tuple[int, ...], memoryview]] = {}
    for expected in range(count):
        index, code, ndim = rd.unpack(_FIELD, "field header")
        if index != expected:
            raise MalformedError(f"field index {index} where {expected} belongs: fields are 0, 1, 2, ... in order")
        if code not in ITEMSIZE or code == 4:
            raise MalformedError(f"field {index}: unknown dtype code {code}")
        check_ndim(ndim, f"field {index}")
        dims = rd.dims(ndim, f"field {index} dims")
        check_shape(code, dims, f"field {index}")
        raw = rd.take(nbytes_of(code, dims), f"field {index} data")
        if code == DT_BOOL:
            check_bools(raw, f"field {index}")
        if index < len(fields):
            raw_fields[index] = (code, dims, raw)
        # else: a field appended by a newer writer -- skipped, its size known from the dims.
    if rd.pos != rd.end:
        raise LengthError(f"{rd.end - rd.pos} unexpected bytes before the checksum")
    (stored,) = _CRC.unpack(buf[n - _CRC.size :])
    if crc32c.crc32c(buf[: n - _CRC.size]) != stored:
        raise ChecksumError("record CRC32C mismatch")
    if name != schema.name:
        raise SchemaMismatchError(f"record is for schema {name!r}, not {schema.name!r}")
    _check_field_count(schema, record_version, count)

    out: dict[str, Any] = {}
    for index, field in enumerate(fields):
        what = f"{schema.key}.{field.name}"
        if index not in raw_fields:
            if field.default is None:
                raise MissingFieldError(f"{what}: required field absent from the record")
            out[field.name] = _default_value(field, what)
            continue
        code, dims, raw = raw_fields[index]
        want = _field_code(field)
        if code != want or dims != tuple(field.shape):
            raise SchemaMismatchError(
                f"{what}: record has dtype {code} shape {dims}, schema says dtype {want} shape {tuple(field.shape)}"
            )
        arr = array_from(raw, code, dims, copy=len(dims) > 0, what=what)
        out[field.name] = scalar_from(arr, code) if not dims else arr
    return out
