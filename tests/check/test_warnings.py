"""Warnings for legal specs that almost certainly hold a mistake (E0507, E0508, E0504)."""

from __future__ import annotations

from catopt_dsl.compile import analyze
from catopt_dsl.diagnostics import Severity

SPEC = """catopt 1;
schema Use v1 { amount: float; }
SharedVariables s { var z: float; param spare: float = 2; param cap: float = 3; }
LocalProblem a on cuda { param t: float = 1; param scale: float = 2; param unused: float = 3;
    var x: float; var y: float; var h: float;
    minimize square(x - t); }
LocalProblem site[i in 0..2] { param w: float = 1; var q: float; minimize w * square(q); }
Morphism ua : a -> s carries Use v1 { amount = scale * h; }
Functor f : rocm -> canonical { k = 1; }
Functor g : cuda -> canonical { k2 = t * 2; }
Limit agree on s { a.x == z; sum(ua.amount) <= cap; }
"""


def _warnings() -> list[tuple[str, str]]:
    a = analyze("w.cat", text=SPEC)
    assert a.ok, [d.message for d in a.diagnostics]
    return [(d.code.value, d.message) for d in a.diagnostics if d.severity is Severity.WARNING]


def test_each_unused_declaration_warns_once() -> None:
    got = _warnings()
    assert sorted(c for c, _ in got) == ["E0504", "E0507", "E0507", "E0508"]
    text = "\n".join(m for _, m in got)
    assert "`spare` of `s`" in text and "`unused` of `a`" in text  # `cap` is read by the Limit
    assert "variable `y` of `a`" in text  # `x` is linked, `h` feeds a morphism field
    assert "Functor `f` maps `rocm`" in text  # `g` applies to `a` (on cuda)
    # a family is one declaration: no warning per member, and its params are read
    assert "site" not in text


def test_a_clean_example_has_no_warnings() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for spec in sorted((root / "examples").glob("*.cat")):
        warned = [d.message for d in analyze(spec).diagnostics if d.severity is Severity.WARNING]
        assert not warned, (spec.name, warned)


def test_a_csv_saved_with_a_byte_order_mark_loads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "d.csv").write_bytes(b"\xef\xbb\xbf1,2,3\n")
    spec = tmp_path / "b.cat"
    spec.write_text('catopt 1;\nLocalProblem a { param t: float[3] = load("d.csv"); var x: float[3]; minimize sum_squares(x - t); }\n')
    assert analyze(spec).ok


def test_a_schema_library_checks_alone() -> None:
    from pathlib import Path

    a = analyze(Path(__file__).resolve().parents[2] / "examples" / "schemas" / "common.cat")
    assert a.ok and a.plan is None
