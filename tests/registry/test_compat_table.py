"""The compatibility table in docs/registry.md is what the registry does, cell by cell.

Each row of the table is a change from ``v1`` to ``v2`` (the cases of ``test_compat_wire.py``,
whose rules are proven against the record decoder there); each column a mode. For every cell a
fresh registry in that mode gets ``v1`` then ``v2``: ``yes`` means v2 is accepted, ``no`` that it
is refused with a violation naming the field, both versions and the rule. Then the transitive case:
three versions where each step is compatible but the first and third are not.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from catopt_dsl.registry.compat import Mode
from catopt_dsl.registry.documents import parse_schema_text
from catopt_dsl.registry.errors import IncompatibleSchema
from catopt_dsl.registry.registry import Registry
from catopt_dsl.registry.store import SqliteStore
from catopt_dsl.wire import SchemaMismatchError, decode_record, encode_record

DOC = Path(__file__).resolve().parents[2] / "docs" / "registry.md"
BASE = "a: float[3]; b: float; c: float;"
# row -> (v1 body, v2 body, the field a violation names: v2's field at the position, else v1's)
CASES: dict[str, tuple[str, str, str | None]] = {
    "add a field with a default": (BASE, BASE + " d: float = 1.5;", None),
    "add a field without a default": (BASE, BASE + " d: float;", "d"),
    "remove the last field (it had no default)": (BASE, "a: float[3]; b: float;", "c"),
    "remove the last field (it had a default)": ("a: float[3]; b: float; c: float = 2;", "a: float[3]; b: float;", None),
    "remove a middle field": (BASE, "a: float[3]; c: float;", "c"),
    "change a field's element type": (BASE, "a: float[3]; b: int; c: float;", "b"),
    "change a field's shape": (BASE, "a: float[4]; b: float; c: float;", "a"),
    "rename a field": (BASE, "a: float[3]; bb: float; c: float;", "bb"),
    "reorder fields": (BASE, "a: float[3]; c: float; b: float;", "b"),
    "add, change or remove a default": ("a: float[3] = 0; b: float; c: float = 1;", "a: float[3]; b: float = 3; c: float = 2;", None),
}


def documented_table() -> dict[str, dict[Mode, bool]]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- compatibility-table -->")
    lines = []
    for ln in text[start:].splitlines()[1:]:
        if not ln.startswith("|"):
            break  # the table ends at its first non-table line
        lines.append(ln)
    header = [c.strip(" `") for c in lines[0].strip("|").split("|")]
    modes = [Mode(h) for h in header[1:]]
    table: dict[str, dict[Mode, bool]] = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0]] = {m: {"yes": True, "no": False}[c] for m, c in zip(modes, cells[1:], strict=True)}
    assert set(modes) == set(Mode), "the table needs a column for every mode"
    return table


def test_the_table_documents_every_case() -> None:
    assert set(documented_table()) == set(CASES)


def _registry(tmp_path: Path, name: str, mode: Mode) -> Registry:
    reg = Registry(SqliteStore(tmp_path / f"{name}.db"))
    reg.set_config(mode)
    return reg


@pytest.mark.parametrize("row", list(CASES))
def test_every_cell_of_the_table(row: str, tmp_path: Path) -> None:
    v1_body, v2_body, field = CASES[row]
    v1 = parse_schema_text(f"schema S v1 {{ {v1_body} }}")
    v2 = parse_schema_text(f"schema S v2 {{ {v2_body} }}")
    slug = re.sub(r"\W", "_", row)
    for mode, allowed in documented_table()[row].items():
        with _registry(tmp_path, f"{slug}_{mode.value}", mode) as reg:
            reg.register("S", v1)
            if allowed:
                assert reg.register("S", v2).version == 2, (row, mode)
                continue
            with pytest.raises(IncompatibleSchema) as err:
                reg.register("S", v2)
            assert reg.versions("S") == [1], "a refused version leaves nothing behind"
            for v in err.value.violations:
                assert (v.new, v.old, v.mode) == ("v2", "v1", mode)
                assert (v.direction == "BACKWARD" and mode.backward) or (v.direction == "FORWARD" and mode.forward)
            named = {v.field for v in err.value.violations}
            assert field in named, (row, mode, named)
            message = err.value.violations[0].message()
            assert "`S` v2 is not" in message and "v1" in message and mode.value in message


# -- transitive modes: each step compatible, first and third not ----------------------------------

STEPS = (
    "schema S v1 { a: float; b: float = 0; }",
    "schema S v2 { a: float; }",  # drops b: v2 readers skip it, v1 readers default it
    "schema S v3 { a: float; b: int = 0; }",  # brings b back as an int: fine after v2, not after v1
)


@pytest.mark.parametrize("mode", list(Mode))
def test_only_transitive_modes_catch_the_first_to_third_break(mode: Mode, tmp_path: Path) -> None:
    v1, v2, v3 = (parse_schema_text(t) for t in STEPS)
    with _registry(tmp_path, mode.value, mode) as reg:
        reg.register("S", v1)
        reg.register("S", v2)
        if not mode.transitive:
            assert reg.register("S", v3).version == 3
            return
        with pytest.raises(IncompatibleSchema) as err:
            reg.register("S", v3)
        assert {(v.field, v.new, v.old) for v in err.value.violations} == {("b", "v3", "v1")}
        assert "every earlier version" in err.value.violations[0].rule()
    # ... and the break is real: v3 readers cannot decode v1 records, nor v1 readers v3 records.
    with pytest.raises(SchemaMismatchError):
        decode_record(v3, encode_record(v1, {"a": 1.0, "b": 2.0}))
    with pytest.raises(SchemaMismatchError):
        decode_record(v1, encode_record(v3, {"a": 1.0, "b": 2}))
