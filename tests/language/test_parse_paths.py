"""The parser's two paths agree: Lark's own loop (the fast path for a file that parses) and the
recovering driver give the same tree and the same AST, spans included; a file the fast path
cannot take goes to the driver, which reports it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from catopt_dsl import limits
from catopt_dsl.backends.emit import emit_target
from catopt_dsl.compile import analyze
from catopt_dsl.diagnostics import DiagnosticSink
from catopt_dsl.gc_pause import gc_paused
from catopt_dsl.syntax.guard import guarded
from catopt_dsl.syntax.parser import _Builder, parse_text
from catopt_dsl.syntax.recover import parse_clean, parse_recovering

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "examples").glob("*.cat")) + sorted((ROOT / "tests" / "plans" / "cases").glob("*.cat"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_fast_path_gives_the_drivers_tree_and_ast(spec: Path) -> None:
    text = spec.read_text(encoding="utf-8")
    with guarded():
        fast = parse_clean(text)
    with guarded():
        slow = parse_recovering(text)
    assert fast is not None and slow.tree is not None and not slow.problems
    assert fast.tree == slow.tree
    fast_ast = _Builder(spec.name, DiagnosticSink()).spec(fast.tree)
    slow_ast = _Builder(spec.name, DiagnosticSink()).spec(slow.tree)
    assert fast_ast == slow_ast  # every node's span too (frozen dataclasses compare field by field)


@pytest.mark.parametrize(
    "text",
    [
        "catopt 1;\nLocalProblem a { var x: float; minimize square(x) }\n",  # a syntax error
        "catopt 1;\nLocalProblem a { var x: float; minimize square(x); }\n/* never closed\n",
        # `/*` with no `*/` after it lexes as `/` then `*`, which Lark would take; the driver
        # reports the comment that is never closed
        "catopt 1;\nLocalProblem a { var x: float; minimize square(x /*.y); }\n",
    ],
)
def test_a_file_the_fast_path_refuses_goes_to_the_driver(text: str) -> None:
    with guarded():
        assert parse_clean(text) is None
    sink = DiagnosticSink()
    assert parse_text(text, "t.cat", sink) is None
    assert sink.has_errors


def test_comments_are_collected_once_on_either_path() -> None:
    ok = "catopt 1;\n// one\nLocalProblem a { var x: float; /* two */ minimize square(x); }\n"
    bad = ok.replace("square(x);", "square(x)")
    for text in (ok, bad):
        comments: list = []
        parse_text(text, "t.cat", DiagnosticSink(), comments)
        assert [c.text for c in comments] == ["// one", "/* two */"]


def test_gc_paused_restores_the_collector(tmp_path: Path) -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    plan = analyze(SPECS[0]).plan
    assert gc.isenabled() and plan is not None
    emit_target("python", plan, tmp_path / "out")
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that paused the collector itself finds it paused afterwards
        analyze(SPECS[0])
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "text",
    [
        "catopt 1;\nColimit c of " + ",".join(["s"] * (limits.MAX_LIST_ELEMENTS + 5)) + ";\n",
        "catopt 1;\nLocalProblem a { var x: float; minimize " + "(" * 300 + "x" + ")" * 300 + "; }\n",
    ],
    ids=["list-over-the-limit", "brackets-too-deep"],
)
def test_a_limit_stops_both_paths_alike(text: str) -> None:
    """The fast path returns the limit as the driver's outcome (no second parse of a hostile file)."""
    with guarded():
        fast = parse_clean(text)
    with guarded():
        slow = parse_recovering(text)
    assert fast is not None and fast.stopped == "limit" and fast.tree is None
    assert (fast.problems, fast.stopped, fast.stop_at) == (slow.problems, slow.stopped, slow.stop_at)
    assert fast.limit is not None and slow.limit is not None
    assert (fast.limit.code, fast.limit.message, fast.limit.where) == (slow.limit.code, slow.limit.message, slow.limit.where)
