"""Low-level pieces shared by the record codec and the frame codec.

Both formats describe an array the same way: a dtype byte, an ndim byte, ``ndim`` u32 dims, then
the raw row-major little-endian data. This module owns that vocabulary (dtype codes, value
coercion, a bounds-checked reader) so that the two formats cannot drift apart.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from catopt_dsl.wire.errors import EncodeError, MalformedError, TruncatedError

# dtype codes on the wire
DT_F64 = 1
DT_I64 = 2
DT_BOOL = 3
DT_UTF8 = 4  # frames only: a UTF-8 string, ndim 1, dims[0] = byte length

#: wire dtype code -> numpy little-endian dtype (for the numeric codes)
NUMPY_DTYPE: dict[int, np.dtype[Any]] = {
    DT_F64: np.dtype("<f8"),
    DT_I64: np.dtype("<i8"),
    DT_BOOL: np.dtype("u1"),
}
ITEMSIZE: dict[int, int] = {DT_F64: 8, DT_I64: 8, DT_BOOL: 1, DT_UTF8: 1}

#: schema dtype name -> wire code
SCHEMA_DTYPE_CODE: dict[str, int] = {"float": DT_F64, "int": DT_I64, "bool": DT_BOOL}

U32_MAX = 0xFFFF_FFFF
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

#: the most dims an array may have: numpy's limit, so no encoder writes more
MAX_NDIM = 64
#: the most bytes a shape may describe with its zero dims counted as 1 (numpy's limit, so no
#: encoder writes more: an empty array of shape (0, 2**32-1, 2**32-1, 2**32-1) is refused too)
MAX_SHAPE_BYTES = I64_MAX

_DIMS = [struct.Struct("<" + "I" * n) for n in range(9)]


def pack_dims(shape: tuple[int, ...]) -> bytes:
    """``ndim`` u32 little-endian dims."""
    for d in shape:
        if d < 0 or d > U32_MAX:
            raise EncodeError(f"dimension {d} does not fit a u32")
    if len(shape) < len(_DIMS):
        return _DIMS[len(shape)].pack(*shape)
    return struct.pack("<" + "I" * len(shape), *shape)


def coerce_array(value: Any, code: int, what: str) -> np.ndarray:
    """Turn ``value`` into a C-contiguous little-endian array of wire dtype ``code``.

    The check is by numpy *kind* so that e.g. an int array is accepted for a float field
    (widening is lossless enough and is what a user means) but a float is never silently
    truncated into an int field, and bools never pass as numbers. Empty values are accepted for
    any numeric dtype because ``np.asarray([])`` is float64 whatever the field is.
    """
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise EncodeError(f"{what}: cannot convert value to an array ({exc})") from None
    kind: str = arr.dtype.kind
    if arr.size == 0 and kind in "fiub":
        kind = {DT_F64: "f", DT_I64: "i", DT_BOOL: "b"}[code]
    if code == DT_F64:
        if kind not in "fiu":
            raise EncodeError(f"{what}: expected float data, got dtype {arr.dtype}")
    elif code == DT_I64:
        if kind not in "iu":
            raise EncodeError(f"{what}: expected int data, got dtype {arr.dtype}")
        if kind == "u" and arr.size and arr.dtype.itemsize >= 8 and int(arr.max()) > I64_MAX:
            raise EncodeError(f"{what}: value does not fit int64")
    elif code == DT_BOOL:
        if kind != "b":
            raise EncodeError(f"{what}: expected bool data, got dtype {arr.dtype}")
        # numpy bools are one byte holding exactly 0 or 1: reinterpret, do not convert.
        return _contiguous(arr.astype(np.bool_, copy=False)).view(np.uint8)
    else:  # pragma: no cover - callers pass known codes
        raise EncodeError(f"{what}: unsupported dtype code {code}")
    return _contiguous(arr.astype(NUMPY_DTYPE[code], copy=False))


def _contiguous(arr: np.ndarray) -> np.ndarray:
    # not np.ascontiguousarray: it turns 0-d arrays into 1-d ones, which would change the shape.
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def data_view(arr: np.ndarray) -> memoryview:
    """A flat byte view of a contiguous array: joined into the output without a ``tobytes`` copy."""
    return memoryview(arr).cast("B") if arr.size else memoryview(b"")  # type: ignore[arg-type]


def check_ndim(ndim: int, what: str) -> None:
    """Refuse more dims than :data:`MAX_NDIM` (before the dims are read)."""
    if ndim > MAX_NDIM:
        raise MalformedError(f"{what}: {ndim} dims, at most {MAX_NDIM} are allowed")


def check_shape(code: int, dims: tuple[int, ...], what: str) -> None:
    """Refuse a shape that describes more than :data:`MAX_SHAPE_BYTES` bytes, zero dims counted as
    1 (before its data is read): no encoder can write one, and numpy cannot even represent it."""
    n = ITEMSIZE[code]
    for d in dims:
        n *= d or 1
    if n > MAX_SHAPE_BYTES:
        raise MalformedError(f"{what}: shape {dims} is too large")


def check_bools(raw: memoryview, what: str) -> None:
    """Canonical form: a bool byte is exactly 0 or 1 (so decode -> encode is the identity)."""
    if len(raw) and int(np.frombuffer(raw, dtype=np.uint8).max()) > 1:
        raise MalformedError(f"{what}: bool byte other than 0 or 1")


def nbytes_of(code: int, dims: tuple[int, ...]) -> int:
    n = ITEMSIZE[code]
    for d in dims:
        n *= d
    return n


@dataclass
class Reader:
    """Bounds-checked cursor over a byte view; every overrun is a :class:`TruncatedError`."""

    buf: memoryview
    pos: int
    end: int

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > self.end:
            raise TruncatedError(f"{what}: needs {n} bytes at offset {self.pos}, only {self.end - self.pos} left")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return int(self.take(1, what)[0])

    def unpack(self, st: struct.Struct, what: str) -> tuple[Any, ...]:
        return st.unpack(self.take(st.size, what))

    def dims(self, ndim: int, what: str) -> tuple[int, ...]:
        if ndim == 0:
            return ()
        st = _DIMS[ndim] if ndim < len(_DIMS) else struct.Struct("<" + "I" * ndim)
        return tuple(int(d) for d in self.unpack(st, what))

    def utf8(self, n: int, what: str) -> str:
        raw = self.take(n, what)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedError(f"{what}: not valid UTF-8") from None


def array_from(raw: memoryview, code: int, dims: tuple[int, ...], copy: bool, what: str) -> np.ndarray:
    """Decode raw little-endian data into an array. The caller has bounds-checked it to the exact
    size of ``dims`` (which passed :func:`check_ndim` / :func:`check_shape`) and checked bool bytes.

    ``np.frombuffer`` is a view; we copy only when asked, so large frames decode without touching
    their payload twice.
    """
    if code == DT_BOOL:
        arr = np.frombuffer(raw, dtype=np.uint8).view(np.bool_)
    else:
        arr = np.frombuffer(raw, dtype=NUMPY_DTYPE[code])
        if not arr.dtype.isnative:  # big-endian hosts only; a no-op branch on x86/ARM
            arr = arr.astype(arr.dtype.newbyteorder("="))
    try:
        arr = arr.reshape(dims)
    except ValueError:  # an empty array whose other dims overflow numpy's size arithmetic
        raise MalformedError(f"{what}: dims {dims} cannot be represented") from None
    if copy:
        arr = arr.copy()
    return arr


def scalar_from(arr: np.ndarray, code: int) -> Any:
    """A 0-d array as the matching Python scalar (float keeps every bit, NaN payloads included)."""
    item = arr.reshape(()).item() if arr.ndim else arr.item()
    if code == DT_F64:
        return float(item)
    if code == DT_I64:
        return int(item)
    return bool(item)
