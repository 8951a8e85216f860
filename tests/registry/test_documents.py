"""Schema documents: text <-> canonical JSON, content hashes, and what a client may not send."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catopt_dsl.ir.model import IRSchema, IRSchemaField
from catopt_dsl.registry.documents import (
    canonical_text,
    content_hash,
    from_stored,
    load_spec_schemas,
    parse_schema_text,
    render_schema,
)
from catopt_dsl.registry.errors import InvalidSchema


def test_equivalent_defaults_are_one_document() -> None:
    a = parse_schema_text("schema S v1 { x: float[2] = 0; n: int = 3; on: bool[2] = true; }")
    b = parse_schema_text("catopt 1;\nschema S v1 { x: float[2] = [0.0, 0.0]; n: int = 3; on: bool[2] = [true, true]; }")
    assert a == b and content_hash(a) == content_hash(b) and canonical_text(a) == canonical_text(b)
    assert a.fields[0] == IRSchemaField("x", "float", (2,), [0.0, 0.0])
    assert content_hash(a) != content_hash(parse_schema_text("schema S v2 { x: float[2] = 0; n: int = 3; on: bool[2] = true; }"))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("schema S v1 { x: float }", "E0001"),
        ('import "x.cat"; schema S v1 { x: float; }', "`import` is not allowed"),
        ('schema S v1 { x: float[2] = load("data/x.csv"); }', "`load()` is not allowed"),
        ("schema S v1 { x: float; } schema S v2 { x: float; }", "exactly one"),
        ("schema S v1 { x: float; x: int; }", "E0102"),
        ("schema S v1 { x: int = 1.5; }", "E0203"),
        ("schema S v1 { x: float = 1e999; }", "E0604"),
        ("", "exactly one"),
    ],
)
def test_invalid_schema_texts(text: str, why: str) -> None:
    with pytest.raises(InvalidSchema) as err:
        schema = parse_schema_text(text)
        canonical_text(schema)  # non-finite defaults are refused when the document is made canonical
    assert why in err.value.message


def test_errors_point_at_the_users_own_lines() -> None:
    with pytest.raises(InvalidSchema) as err:
        parse_schema_text("schema S v1 {\n  x: float;\n  y: flaot;\n}")
    assert "line 3" in err.value.message


def test_schema_only_files_and_full_specs_register_their_schemas(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    common = load_spec_schemas(root / "examples" / "schemas" / "common.cat")
    assert common.ok and [(s.name, s.version) for s in common.schemas] == [("Allocation", 1), ("Allocation", 2), ("ComputeUsage", 1)]
    fleet = load_spec_schemas(root / "examples" / "gpu_fleet.cat")  # imports common.cat
    assert fleet.ok and {s.name for s in fleet.schemas} >= {"Allocation"}
    assert common.span("Allocation", 2, "priority").line == 16


_FIELDS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.sampled_from(["float", "int", "bool"]),
        st.sampled_from([(), (1,), (3,), (2, 2)]),
        st.one_of(st.none(), st.integers(-5, 5), st.floats(-1e300, 1e300, allow_nan=False, width=64)),
    ),
    max_size=5,
    unique_by=lambda t: t[0],
)


@settings(max_examples=150, deadline=None)
@given(_FIELDS, st.integers(1, 9))
def test_render_parses_back_to_the_same_document(fields: list[tuple[str, str, tuple[int, ...], object]], version: int) -> None:
    out = []
    for name, dtype, shape, raw in fields:
        default = None
        if raw is not None:
            value = {"float": float(raw), "int": int(float(raw)) if abs(float(raw)) < 1e15 else 7, "bool": bool(raw)}[dtype]  # type: ignore[arg-type]
            arr = np.full(shape, value)
            default = arr.tolist() if shape else arr.reshape(()).item()
        out.append(IRSchemaField(name, dtype, shape, default))
    schema = IRSchema("S", version, tuple(out))
    again = parse_schema_text(render_schema(schema))
    assert canonical_text(again) == canonical_text(schema)
    assert from_stored("CATOPT", canonical_text(schema)) == schema
