"""Every compatibility rule is what the record decoder actually does.

For each kind of change, records are encoded with one version and decoded with the other, in both
directions. A direction is *faithful* when decoding succeeds and every field of the reader gets the
value the writer wrote under the same name (or the reader's default when the writer has no such
field). The registry's rule (``read_problems``) must report no problem exactly when the decode is
faithful: a decode that fails, and one that silently puts a value in the wrong field (a rename, a
reorder, a removed middle field), are both violations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catopt_dsl.ir.model import IRSchema, IRSchemaField
from catopt_dsl.registry.compat import read_problems
from catopt_dsl.registry.documents import parse_schema_text
from catopt_dsl.wire import WireError, decode_record, encode_record

BASE = "a: float[3]; b: float; c: float;"
#: change -> (v1 body, v2 body); the same changes as the table in docs/registry.md
CHANGES: dict[str, tuple[str, str]] = {
    "add a field with a default": (BASE, BASE + " d: float = 1.5;"),
    "add a field without a default": (BASE, BASE + " d: float;"),
    "remove the last field (no default)": (BASE, "a: float[3]; b: float;"),
    "remove the last field (with a default)": ("a: float[3]; b: float; c: float = 2;", "a: float[3]; b: float;"),
    "remove a middle field": (BASE, "a: float[3]; c: float;"),
    "change an element type": (BASE, "a: float[3]; b: int; c: float;"),
    "change a shape": (BASE, "a: float[4]; b: float; c: float;"),
    "rename a field": (BASE, "a: float[3]; bb: float; c: float;"),
    "reorder fields": (BASE, "a: float[3]; c: float; b: float;"),
}


def _schema(version: int, body: str) -> IRSchema:
    return parse_schema_text(f"schema S v{version} {{ {body} }}")


def _values(schema: IRSchema) -> dict[str, Any]:
    """A distinct value per field, so a value read into the wrong field is noticed."""
    out: dict[str, Any] = {}
    for k, f in enumerate(schema.fields):
        size = int(np.prod(f.shape)) if f.shape else 1
        base = 10.0 * (k + 1) + np.arange(size).reshape(f.shape) + 0.25
        if f.dtype == "int":
            base = base.astype(np.int64) * 7 + 3
        elif f.dtype == "bool":
            base = (np.arange(size).reshape(f.shape) + k) % 2 == 0
        out[f.name] = base.tolist() if f.shape else base.reshape(()).item()
    return out


def faithful(reader: IRSchema, writer: IRSchema) -> bool:
    values = _values(writer)
    try:
        decoded = decode_record(reader, encode_record(writer, values))
    except WireError:
        return False
    for f in reader.fields:
        want = values.get(f.name, f.default)
        if want is None or np.asarray(decoded[f.name]).tolist() != np.asarray(want).tolist():
            return False
    return True


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("direction", ["new reads old (BACKWARD)", "old reads new (FORWARD)"])
def test_rule_matches_the_decoder(change: str, direction: str) -> None:
    old, new = (_schema(1, CHANGES[change][0]), _schema(2, CHANGES[change][1]))
    reader, writer = (new, old) if direction.startswith("new") else (old, new)
    problems = read_problems(reader, writer)
    assert (not problems) == faithful(reader, writer), (change, direction, problems)


def test_a_rename_decodes_but_lands_under_the_new_name() -> None:
    """Why a rename is refused although the decoder accepts it: the bytes carry positions only."""
    old, new = _schema(1, BASE), _schema(2, CHANGES["rename a field"][1])
    decoded = decode_record(new, encode_record(old, _values(old)))  # no error
    assert decoded["bb"] == _values(old)["b"]
    removed = _schema(2, CHANGES["remove a middle field"][1])
    misread = decode_record(removed, encode_record(old, _values(old)))  # no error either ...
    assert misread["c"] == _values(old)["b"]  # ... but `c` holds what was written as `b`
    assert read_problems(removed, old) and read_problems(new, old)


# -- the same, for random schemas and random edits ---------------------------------------------

_NAMES = st.sampled_from(["p", "q", "r", "s", "t", "u"])
_FIELD = st.builds(
    lambda name, dtype, shape, default: IRSchemaField(name, dtype, shape, default),
    _NAMES,
    st.sampled_from(["float", "int"]),
    st.sampled_from([(), (2,), (3,), (2, 2)]),
    st.booleans(),
)


def _with_defaults(fields: list[IRSchemaField]) -> tuple[IRSchemaField, ...]:
    out = []
    seen = set()
    for f in fields:
        if f.name in seen:
            continue
        seen.add(f.name)
        default = None
        if f.default:
            size = int(np.prod(f.shape)) if f.shape else 1
            arr = np.full(size, -1.0 if f.dtype == "float" else -1).reshape(f.shape)
            default = arr.tolist() if f.shape else arr.reshape(()).item()
        out.append(IRSchemaField(f.name, f.dtype, f.shape, default))
    return tuple(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_FIELD, min_size=0, max_size=5), st.lists(_FIELD, min_size=0, max_size=5), st.integers(0, 5))
def test_rule_matches_the_decoder_for_random_edits(a: list[IRSchemaField], b: list[IRSchemaField], keep: int) -> None:
    old = IRSchema("S", 1, _with_defaults(a))
    # Keep a prefix of the old fields so that compatible pairs are common, then append b's.
    new = IRSchema("S", 2, _with_defaults(list(old.fields[:keep]) + b))
    for reader, writer in ((new, old), (old, new)):
        assert (not read_problems(reader, writer)) == faithful(reader, writer), (reader, writer)
