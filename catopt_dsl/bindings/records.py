"""``Record``: the base of every generated schema-version dataclass (``AllocationV2``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

import numpy as np

from catopt_dsl.ir.model import IRSchema, IRSchemaField

R = TypeVar("R", bound="Record")

_NP_DTYPES: Mapping[str, str] = {"float": "float64", "int": "int64", "bool": "bool"}


@dataclass(frozen=True)
class FieldSpec:
    """One schema field: its Python attribute, its spec (wire) name, type, shape and default."""

    attr: str
    name: str
    dtype: str  # "float" | "int" | "bool"
    shape: tuple[int, ...]
    default: Any = None  # nested list / scalar; None when the field is required


def array_default(value: Any, dtype: str, shape: tuple[int, ...]) -> Any:
    """A dataclass field default for an array field (arrays are unhashable, so a factory).

    A scalar default (``usage: float[3] = 0``) is broadcast to the field's shape.
    """
    np_dtype = _NP_DTYPES[dtype]

    def make() -> np.ndarray:
        return _frozen(np.array(np.broadcast_to(np.array(value, dtype=np_dtype), shape)))

    return dataclasses.field(default_factory=make)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _coerce(spec: FieldSpec, value: Any) -> Any:
    """The canonical Python value of a field: float/int/bool for scalars, read-only arrays otherwise."""
    if spec.shape == ():
        if isinstance(value, np.ndarray):
            if value.shape not in ((), (1,)):
                raise ValueError(f"field {spec.name!r} is a scalar, got an array of shape {value.shape}")
            value = value.reshape(()).item()
        if spec.dtype == "float":
            return float(value)
        if spec.dtype == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"field {spec.name!r} is an int, got {value!r}")
            return int(value)
        return bool(value)
    arr = np.array(value, dtype=_NP_DTYPES[spec.dtype], copy=True)
    if arr.shape != spec.shape:
        raise ValueError(f"field {spec.name!r} has shape {spec.shape}, got {arr.shape}")
    return _frozen(arr)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind == "f":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


class Record:
    """Behaviour shared by the generated ``@dataclass(frozen=True, kw_only=True, eq=False)`` classes.

    Subclasses set ``SCHEMA_NAME``, ``SCHEMA_VERSION`` and ``FIELDS`` (wire order). Values are
    coerced on construction (arrays become read-only numpy arrays of the declared dtype and shape),
    so a record is valid once built. Equality compares fields, NaN equal to NaN.
    """

    SCHEMA_NAME: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int]
    FIELDS: ClassVar[tuple[FieldSpec, ...]]

    def __post_init__(self) -> None:
        for spec in self.FIELDS:
            # Frozen dataclass: the coerced value has to be stored past __setattr__.
            object.__setattr__(self, spec.attr, _coerce(spec, getattr(self, spec.attr)))

    @classmethod
    def ir_schema(cls) -> IRSchema:
        """The IR schema this class was generated from (what the wire format is driven by)."""
        return IRSchema(
            cls.SCHEMA_NAME,
            cls.SCHEMA_VERSION,
            tuple(IRSchemaField(f.name, f.dtype, f.shape, f.default) for f in cls.FIELDS),
        )

    def to_dict(self) -> dict[str, Any]:
        """Spec field name -> value; arrays as nested lists, so the result is JSON-able."""
        out: dict[str, Any] = {}
        for spec in self.FIELDS:
            value = getattr(self, spec.attr)
            out[spec.name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        """Build from spec field names (as :meth:`to_dict` gives); missing fields take defaults."""
        known = {f.name for f in cls.FIELDS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        kwargs = {f.attr: data[f.name] for f in cls.FIELDS if f.name in data}
        # `cls` is a generated dataclass whose __init__ takes these keywords; Record itself does not.
        return cast(R, cast(Any, cls)(**kwargs))

    def to_bytes(self) -> bytes:
        """The record in catopt's wire format (``catopt_dsl.wire.encode_record``)."""
        from catopt_dsl.wire import encode_record  # lazy: the wire codec is optional at import

        values = {spec.name: getattr(self, spec.attr) for spec in self.FIELDS}
        return bytes(encode_record(self.ir_schema(), values))

    @classmethod
    def from_bytes(cls: type[R], data: bytes) -> R:
        """Inverse of :meth:`to_bytes` (``catopt_dsl.wire.decode_record``)."""
        from catopt_dsl.wire import decode_record

        return cls.from_dict(dict(decode_record(cls.ir_schema(), data)))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        # Defining __eq__ leaves __hash__ unset: records hold arrays and are unhashable, like lists.
        return all(_same(getattr(self, f.attr), getattr(other, f.attr)) for f in self.FIELDS)
