"""Canonical JSON: one byte string per value, so a signature over it means one thing.

The encoding is ``json.dumps`` with keys sorted by code point, no whitespace (``,`` and ``:``
separators), UTF-8 without ``\\u`` escapes for non-ASCII text, over a restricted value space:
objects with text keys, arrays, text, booleans, null and integers of magnitude below 2^53.
Floats are refused: their decimal spelling is not unique across implementations, so a value that
needs one (an objective, a tolerance) is written as text by whoever records it. The decoder
accepts only bytes the encoder produces (decode then re-encode must give the input back).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_SAFE_INT", "CanonicalError", "canonical_json", "parse_canonical"]

MAX_SAFE_INT = 2**53 - 1
_MAX_DEPTH = 64


class CanonicalError(ValueError):
    """A value outside the canonical space, or bytes that are not its canonical encoding."""


def _check(value: Any, where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise CanonicalError(f"{where}: nested more than {_MAX_DEPTH} deep")
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise CanonicalError(f"{where}: text with a lone surrogate is not UTF-8") from None
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise CanonicalError(f"{where}: integer {value} is outside +-(2^53 - 1)")
        return
    if isinstance(value, float):
        raise CanonicalError(f"{where}: floats have no canonical spelling; record {value!r} as text")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"{where}: object key {key!r} is not text")
            _check(key, f"{where} key", depth + 1)
            _check(item, f"{where}.{key}", depth + 1)
        return
    raise CanonicalError(f"{where}: {type(value).__name__} is not a JSON value")


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of ``value``."""
    _check(value, "value", 0)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_canonical(data: bytes) -> Any:
    """Decode canonical JSON bytes; anything else (other spacing, order, escapes) is refused."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CanonicalError(f"not JSON: {exc}") from None
    if canonical_json(value) != bytes(data):
        raise CanonicalError("not in canonical form (key order, spacing or escapes differ)")
    return value
