"""Resource limits: each is documented in docs/language.md with its diagnostic, and each is
checked where the quantity first becomes known (while parsing, before expanding, before allocating)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from catopt_dsl import limits
from catopt_dsl.compile import analyze
from catopt_dsl.diagnostics import DiagnosticSink
from catopt_dsl.errors import ErrorCode
from catopt_dsl.syntax.parser import parse_text

ROOT = Path(__file__).resolve().parents[2]
LANGUAGE_MD = ROOT / "docs" / "language.md"
ROW = re.compile(r"^\|\s*`(MAX_[A-Z_]+)`\s*\|\s*([0-9,^ ]+?)\s*\|\s*(E\d{4}|-)\s*\|", re.MULTILINE)


def _doc_rows() -> dict[str, tuple[str, str]]:
    text = LANGUAGE_MD.read_text(encoding="utf-8")
    section = text[text.index("## Resource limits") :]
    return {m.group(1): (m.group(2), m.group(3)) for m in ROW.finditer(section)}


def test_every_limit_is_documented_with_value_and_code() -> None:
    rows = _doc_rows()
    names = {lim.name for lim in limits.LIMITS}
    assert set(rows) == names, f"undocumented: {sorted(names - set(rows))}; stale: {sorted(set(rows) - names)}"
    for lim in limits.LIMITS:
        value, code = rows[lim.name]
        assert int(value.replace(",", "")) == lim.value, f"{lim.name}: docs say {value}, limits.py {lim.value}"
        assert code == (lim.code.value if lim.code else "-"), f"{lim.name}: docs say {code}"


def test_grammar_string_bound_matches_the_limit() -> None:
    grammar = (ROOT / "grammar" / "catopt.lark").read_text(encoding="utf-8")
    assert f"{{0,{limits.MAX_STRING_CHARS}}}" in grammar


def _parse(text: str) -> list[tuple[str, int, int]]:
    sink = DiagnosticSink()
    parse_text(text, "t.cat", sink)
    return [(d.code.value, d.span.line, d.span.col) for d in sink.errors()]


HEAD = "catopt 1;\nLocalProblem a { var x: float; minimize "


@pytest.mark.parametrize(
    ("text", "code", "line", "col"),
    [
        # a chain of 2,000,000 `+`: refused at the 256th operator, not after building the tree
        (HEAD + "+".join(["x"] * 2_000_000) + "; }", "E0004", 2, 40 + 2 * limits.MAX_TREE_DEPTH),
        # right-recursive unary signs: refused before they are all shifted
        (HEAD + "- " * 1_000_000 + "x; }", "E0004", 2, 41 + 2 * (limits.MAX_TREE_DEPTH - 1)),
        (HEAD + "(" * 10_000 + "x" + ")" * 10_000 + "; }", "E0004", 2, 40 + limits.MAX_BRACKET_DEPTH),
        ("catopt 1;\nLocalProblem a { param p: float[200000] = [" + ",".join(["1"] * 200_000) + "]; }", "E0007", 2, 44 + 2 * limits.MAX_LIST_ELEMENTS - 1),
        ("catopt 1;\nLocalProblem " + "n" * 1_000_000 + " {}", "E0007", 2, 14),
        (HEAD + "1" * 5000 + "; }", "E0007", 2, 41),
        ("catopt 1;\nschema S v" + "9" * 200 + " {}", "E0007", 2, 10),
        ('catopt 1;\nimport "' + "\\a" * 1_000_000 + '";', "E0007", 2, 8),
        ('catopt 1;\nimport "abc;\n', "E0002", 2, 8),
        ("catopt 1;\n/* never closed\n" + "x" * 100_000, "E0002", 2, 1),
    ],
    ids=["sum_chain", "unary_signs", "parens", "array_literal", "long_name", "long_int", "long_version", "long_string", "open_string", "open_comment"],
)
def test_parse_limits_are_located_and_fast(text: str, code: str, line: int, col: int) -> None:
    t0 = time.perf_counter()
    got = _parse(text)
    elapsed = time.perf_counter() - t0
    assert got and got[0] == (code, line, col), got
    # Not a benchmark: a generous bound that only a super-linear parse would miss.
    assert elapsed < 30, elapsed


@pytest.mark.slow
def test_token_limit() -> None:
    # Colimits of 99,000 names each: one token per name and per comma, under the list limit.
    names = ",".join(["s"] * 99_000)
    count = limits.MAX_TOKENS // (2 * 99_000 + 2) + 1
    text = "catopt 1;\n" + "".join(f"Colimit c{k} of {names};\n" for k in range(count))
    sink = DiagnosticSink()
    parse_text(text, "t.cat", sink)
    first = sink.errors()[0]
    assert first.code is ErrorCode.LIMIT and "tokens" in first.message, first


def test_one_bom_is_accepted_and_a_second_is_not(tmp_path: Path) -> None:
    body = "catopt 1;\nLocalProblem a { var x: float; minimize square(x); }\n"
    one = tmp_path / "one.cat"
    one.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert analyze(one).ok
    two = tmp_path / "two.cat"
    two.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf" + body.encode())
    errs = analyze(two).sink.errors()
    assert [(d.code.value, d.span.line, d.span.col) for d in errs] == [("E0002", 1, 1)]


@pytest.mark.parametrize("eol", ["\r", "\r\n", "\n"])
def test_line_endings_give_the_same_positions(tmp_path: Path, eol: str) -> None:
    lines = ["catopt 1;", "LocalProblem a {", "    var x: float;", "    minimize square(y);", "}", ""]
    spec = tmp_path / "t.cat"
    spec.write_bytes(eol.join(lines).encode())
    a = analyze(spec)
    errs = [(d.code.value, d.span.line, d.span.col) for d in a.sink.errors()]
    assert errs == [("E0101", 4, 21)]
    assert a.sources.line(a.file, 4) == "    minimize square(y);"


def test_invalid_utf8_after_cr_only_lines_is_located(tmp_path: Path) -> None:
    spec = tmp_path / "t.cat"
    spec.write_bytes(b"catopt 1;\rLocalProblem a\r{ \xff }")
    errs = analyze(spec).sink.errors()
    assert [(d.code.value, d.span.line, d.span.col) for d in errs] == [("E0003", 3, 3)]


@pytest.mark.parametrize(
    ("family", "code"),
    [
        ("0..99999*99999*99999", "E0007"),
        ("0..9223372036854775808", "E0007"),
        ("-9223372036854775809..0", "E0007"),
        (f"0..{limits.MAX_FAMILY_MEMBERS}", "E0007"),
    ],
)
def test_family_sizes_are_checked_before_expansion(family: str, code: str) -> None:
    text = f"catopt 1;\nLocalProblem f[i in {family}] {{ var x: float; minimize square(x); }}\n"
    t0 = time.perf_counter()
    got = _parse(text)
    assert got == [(code, 2, 21)]
    assert time.perf_counter() - t0 < 5


def test_largest_family_bounds_are_accepted() -> None:
    text = "catopt 1;\nLocalProblem f[i in -9223372036854775808..-9223372036854775807] { var x: float; minimize square(x); }\n"
    assert _parse(text) == []


def test_schema_version_above_u32_is_refused() -> None:
    ok = "catopt 1;\nschema S v4294967295 { a: float; }\n"
    bad = "catopt 1;\nschema S v4294967296 { a: float; }\n"
    assert _parse(ok) == []
    assert _parse(bad) == [("E0007", 2, 10)]


def _check(tmp_path: Path, body: str) -> tuple[list[tuple[str, int, int]], float]:
    spec = tmp_path / "t.cat"
    spec.write_text("catopt 1;\n" + body, encoding="utf-8")
    t0 = time.perf_counter()
    a = analyze(spec, lower=False)
    return [(d.code.value, d.span.line, d.span.col) for d in a.sink.errors()], time.perf_counter() - t0


@pytest.mark.parametrize(
    ("body", "where"),
    [
        # a declared type too large to allocate: refused at the type
        ("LocalProblem a { param p: float[100000, 100000] = 0; var x: float; minimize square(x); }\n", (2, 27)),
        ("LocalProblem a { var x: float[100000, 100000]; minimize sum_squares(x); }\n", (2, 25)),
        ("schema S v1 { f: float[100000, 100000]; }\nLocalProblem a { var x: float; minimize square(x); }\n", (2, 18)),
        # an outer product of two legal vectors is an illegal matrix: refused before it is built
        (
            (
                "LocalProblem a { param u: float[5000, 1] = 1; param v: float[1, 5000] = 2;\n"
                "  param w: float = sum(u @ v); var x: float; minimize square(x); }\n"
            ),
            (3, 24),
        ),
        # per-member elements times members
        ("LocalProblem f[i in 0..9999] { param p: float[10000] = i; var x: float; minimize square(x); }\n", (2, 15)),
        # a morphism field whose coefficient matrix would be dense and huge
        (
            (
                "schema S v1 { f: float[5000]; }\nSharedVariables s { }\n"
                "LocalProblem a { var x: float[5000]; minimize sum_squares(x); }\n"
                "Morphism m : a -> s carries S v1 { f = x; }\n"
            ),
            (5, 10),
        ),
    ],
    ids=["param_type", "var_type", "field_type", "outer_product", "family_elements", "coefficients"],
)
def test_size_limits_are_checked_before_allocating(tmp_path: Path, body: str, where: tuple[int, int]) -> None:
    errs, elapsed = _check(tmp_path, body)
    assert ("E0007", *where) in errs, errs
    assert elapsed < 10, elapsed


def test_constant_folding_has_a_work_budget(tmp_path: Path) -> None:
    chain = " @ ".join(["A"] * 200)
    errs, elapsed = _check(
        tmp_path,
        f"LocalProblem a {{ param A: float[1500, 1500] = 0.001; param B: float[1500, 1500] = {chain};\n"
        "  var x: float; minimize square(x); }\n",
    )
    assert errs and errs[0][0] == "E0007", errs
    assert elapsed < 60, elapsed


def test_objects_cap_is_checked_before_expanding(tmp_path: Path) -> None:
    fams = "".join(
        f"LocalProblem f{k}[i in 0..99999] {{ var x: float; minimize square(x); }}\n" for k in range(3)
    )
    errs, elapsed = _check(tmp_path, fams)
    assert ("E0007", 4, 16) in errs, errs
    assert elapsed < 30, elapsed


def test_plan_deltas_are_bounded_in_total(tmp_path: Path) -> None:
    """200 one-line deltas of a 500-member plan: each yields a whole plan. Checking stops at the
    first delta that would pass MAX_DELTA_OBJECTS, after bounded work."""
    lines = ["LocalProblem a[i in 0..499] { param p: float = 1; var x: float[4]; minimize sum_squares(x - p); }"]
    lines += [f"PlanDelta d{k} {{ set a.p = {k}; }}" for k in range(200)]
    errs, _ = _check(tmp_path, "\n".join(lines) + "\n")
    first = limits.MAX_DELTA_OBJECTS // 500
    assert errs == [("E0007", 3 + first, 11)], errs


def test_did_you_mean_is_bounded(tmp_path: Path) -> None:
    """3,000 forward-referenced params took 87 s when every unknown name ran difflib over every name."""
    n = 3000
    params = "".join(f"  param p{i}: float = p{i + 1};\n" for i in range(n))
    errs, elapsed = _check(tmp_path, "LocalProblem a {\n" + params + f"  param p{n}: float = 1;\n  var x: float; minimize square(x - p0); }}\n")
    assert len(errs) == limits.MAX_DIAGNOSTICS and all(c == "E0101" for c, _, _ in errs)
    a = analyze(tmp_path / "t.cat", lower=False)
    helped = [d for d in a.sink.errors() if any("did you mean" in n.message for n in d.notes)]
    assert 0 < len(helped) <= limits.MAX_SUGGESTIONS
    assert elapsed < 30, elapsed
