"""The formatter: canonical, idempotent, comment-preserving, and never a change of meaning.

`catoptc fmt` is tested as a command in tests/authoring/; this file tests what it writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catopt_dsl.diagnostics import DiagnosticSink
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast
from catopt_dsl.syntax.format import format_source, meaning
from catopt_dsl.syntax.parser import parse_text
from catopt_dsl.syntax.unparse import unparse

ROOT = Path(__file__).resolve().parents[2]
CORPORA = {
    "examples": sorted((ROOT / "examples").glob("*.cat")) + sorted((ROOT / "examples" / "schemas").glob("*.cat")),
    "plans": sorted((ROOT / "tests" / "plans" / "cases").glob("*.cat")),
    "bad": sorted((ROOT / "tests" / "cases" / "bad").rglob("*.cat")),
    "hostile": sorted((ROOT / "tests" / "cases" / "hostile").glob("*.cat")),
    "other": sorted(p for d in ("keywords", "naming", "solve") for p in (ROOT / "tests" / "cases" / d).rglob("*.cat")),
}
ALL = [p for files in CORPORA.values() for p in files]


def _fmt(text: str, name: str = "t.cat") -> str:
    out = format_source(text, name)
    assert out.text is not None, [d.message for d in out.diagnostics]
    return out.text


def _parse(text: str) -> tuple[ast.Spec, list[ast.Comment]]:
    comments: list[ast.Comment] = []
    spec = parse_text(text, "t.cat", DiagnosticSink(), comments)
    assert spec is not None
    return spec, comments


def test_the_corpora_are_there() -> None:
    assert len(CORPORA["examples"]) >= 7 and len(CORPORA["plans"]) >= 10 and len(CORPORA["bad"]) >= 60


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_formatting_is_idempotent_and_keeps_meaning_and_comments(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    first = format_source(text, path.name)
    if first.text is None:
        # Only files that do not parse are refused; they must say why.
        assert first.diagnostics, path
        return
    assert _fmt(first.text, path.name) == first.text
    before, comments = _parse(text)
    after, comments_after = _parse(first.text)
    assert meaning(after) == meaning(before)
    assert [c.text.rstrip() for c in comments_after] == [c.text.rstrip() for c in comments]


def test_every_example_and_plan_case_formats() -> None:
    for path in CORPORA["examples"] + CORPORA["plans"]:
        assert format_source(path.read_text(encoding="utf-8"), path.name).text is not None, path


def test_bad_corpus_files_that_parse_keep_their_errors(tmp_path: Path) -> None:
    """A formatted bad spec reports the same codes: formatting moves text, never meaning."""
    from catopt_dsl.compile import check_file

    bad = ROOT / "tests" / "cases" / "bad"
    shutil.copytree(bad, tmp_path / "bad")
    formatted = 0
    for path in sorted((tmp_path / "bad").glob("*.cat")):
        out = format_source(path.read_text(encoding="utf-8"), path.name)
        if out.text is None:
            continue
        before = sorted(d.code.value for d in check_file(path))
        path.write_text(out.text, encoding="utf-8")
        after = sorted(d.code.value for d in check_file(path))
        assert after == before, path.name
        formatted += 1
    assert formatted >= 50


def test_the_syntax_corpus_is_refused_with_its_errors() -> None:
    for path in sorted((ROOT / "tests" / "cases" / "syntax").glob("*.cat")):
        out = format_source(path.read_text(encoding="utf-8"), path.name)
        assert out.text is None and out.diagnostics, path


STYLE_IN = """\
catopt 1;
import "schemas/common.cat";
// the model
SharedVariables   model{var w:float[3,2];minimize 0.01*sum_squares(w);}
LocalProblem site[i in 0..2]  on cpu{
    param A:float[2,2]=[[1,0],
                        [0,1]];   // identity
    param t:float=1e-3;  param u: float = .5;

    var w:float[3,2];   var h: float;
    minimize sum_squares(w-t)+ (h - (u - 1)) * 2;subject to{w>=0;
    h<=-1;} subject to { h >= -(u) ; }
}
Morphism m[i in 0..2]:site[i]->model carries S v1{f=w[0,:];g = (-3)';}
PlanDelta d{set site.t=2;migrate m to S v2{g=w[1:2:1];};remove Limit l;}
"""

STYLE_OUT = """\
catopt 1;

import "schemas/common.cat";

// the model
SharedVariables model {
    var w: float[3, 2];
    minimize 0.01 * sum_squares(w);
}

LocalProblem site[i in 0..2] on cpu {
    param A: float[2, 2] = [[1, 0], [0, 1]];  // identity
    param t: float = 1e-3;
    param u: float = .5;

    var w: float[3, 2];
    var h: float;
    minimize sum_squares(w - t) + (h - (u - 1)) * 2;
    subject to {
        w >= 0;
        h <= -1;
    }
    subject to {
        h >= -u;
    }
}

Morphism m[i in 0..2] : site[i] -> model carries S v1 {
    f = w[0, :];
    g = (-3)';
}

PlanDelta d {
    set site.t = 2;
    migrate m to S v2 {
        g = w[1:2:1];
    };
    remove Limit l;
}
"""


def test_the_canonical_style() -> None:
    assert _fmt(STYLE_IN) == STYLE_OUT
    assert _fmt(STYLE_OUT) == STYLE_OUT


def test_comments_keep_their_places() -> None:
    text = """\
// before the header
catopt 1;

/* a block comment
   over two lines */
LocalProblem t {  // on the opening line
    // before a declaration
    var x: float;  // after it
    minimize square(
        x  // inside a statement: moves above it
    );
    // before the closing brace
}  // after the closing brace
// at the end
"""
    want = """\
// before the header
catopt 1;

/* a block comment
   over two lines */
LocalProblem t {  // on the opening line
    // before a declaration
    var x: float;  // after it
    // inside a statement: moves above it
    minimize square(x);
    // before the closing brace
}  // after the closing brace
// at the end
"""
    assert _fmt(text) == want
    assert _fmt(want) == want


def test_top_level_items_get_one_blank_line_and_blocks_none_inside() -> None:
    text = "catopt 1;\nSharedVariables a {\n\n\n    var w: float;\n\n\n    var v: float;\n\n}\nSharedVariables b {}\n"
    assert _fmt(text) == "catopt 1;\n\nSharedVariables a {\n    var w: float;\n\n    var v: float;\n}\n\nSharedVariables b {}\n"


def test_a_file_without_header_formats_and_keeps_lacking_it() -> None:
    assert _fmt("LocalProblem t{var x:float;}") == "LocalProblem t {\n    var x: float;\n}\n"


def test_an_empty_file_stays_empty() -> None:
    assert _fmt("") == ""
    assert _fmt("// only a comment\n") == "// only a comment\n"


# ---------------------------------------------------------------------------------------------
# unparse: every expression prints to text that parses back to the same tree
# ---------------------------------------------------------------------------------------------

_S = Span("t.cat", 1, 1, 1, 2)
_names = st.sampled_from(["x", "w", "site", "A"]).map(lambda n: ast.Name(n, _S))
_ints = st.integers(min_value=-5, max_value=300).map(lambda v: ast.Number(v, True, _S))
_floats = st.sampled_from([0.5, 1e-08, 2.5, -0.25, 1e20, 3.0]).map(lambda v: ast.Number(v, False, _S))
_leaves = st.one_of(_names, _ints, _floats)


def _not_a_number(e: ast.Expr) -> bool:
    return not isinstance(e, ast.Number)


def _grow(children: st.SearchStrategy) -> st.SearchStrategy:
    sub = st.one_of(
        children,
        st.just(ast.Star(_S)),
        st.tuples(st.one_of(st.none(), children), st.one_of(st.none(), children), st.one_of(st.none(), children)).map(
            lambda t: ast.Slice(t[0], t[1], t[2], _S)
        ),
    )
    return st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/", "@"]), children, children).map(lambda t: ast.BinOp(t[0], t[1], t[2], _S)),
        # `-3` parses as the literal -3, so a `-` over a number is not a tree the parser builds
        st.tuples(st.sampled_from(["-", "+"]), children).filter(lambda t: t[0] == "+" or _not_a_number(t[1])).map(
            lambda t: ast.UnaryOp(t[0], t[1], _S)
        ),
        st.tuples(children, st.lists(sub, min_size=1, max_size=3)).map(lambda t: ast.Index(t[0], tuple(t[1]), _S)),
        st.tuples(children, st.sampled_from(["w", "hours"])).map(lambda t: ast.Attr(t[0], t[1], _S, _S)),
        children.map(lambda c: ast.Transpose(c, _S)),
        st.tuples(st.sampled_from(["sum", "square", "f"]), st.lists(children, max_size=3)).map(
            lambda t: ast.Call(t[0], _S, tuple(t[1]), _S)
        ),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: ast.ArrayLit(tuple(xs), _S)),
    )


_exprs = st.recursive(_leaves, _grow, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_exprs)
def test_unparse_round_trips(e: ast.Expr) -> None:
    text = f"catopt 1;\nLocalProblem t {{ param p: float = {unparse(e)}; }}\n"
    spec, _ = _parse(text)
    item = spec.items[0]
    assert isinstance(item, ast.LocalProblem)
    assert meaning(item.body.params[0].value) == meaning(e), text


def test_a_comment_after_a_block_on_one_line_stays_after_the_block() -> None:
    # Several statements on one source line: a comment belongs to the statement it follows, not
    # to the first one that started on that line.
    text = (
        "catopt 1; LocalProblem t /* h */ { var x: float; } // end\n"
        "PlanDelta d {\n  add LocalProblem u { var y: float; minimize square(y); } // added\n"
        "  migrate m to S v2 { f = 1; }; // mig\n}\n"
    )
    want = """\
catopt 1;

LocalProblem t {  /* h */
    var x: float;
}  // end

PlanDelta d {
    add LocalProblem u {
        var y: float;
        minimize square(y);
    }  // added
    migrate m to S v2 {
        f = 1;
    };  // mig
}
"""
    assert _fmt(text) == want
    assert _fmt(want) == want


def test_signs_on_signs_keep_their_parentheses() -> None:
    text = "catopt 1;\nLocalProblem t { var x: float; minimize -(-x) + +(-3) - -2; }\n"
    assert "minimize -(-x) + +(-3) - -2;" in _fmt(text)
