"""The parser's two paths agree: Lark's own loop (the fast path for a file that parses) and the
recovering driver give the same tree and the same AST, spans included; a file the fast path
cannot take goes to the driver, which reports it."""

from __future__ import annotations

import gc
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from lark import Lark, Token, Tree

from catopt_dsl import limits
from catopt_dsl.backends.emit import emit_target
from catopt_dsl.compile import analyze
from catopt_dsl.diagnostics import DiagnosticSink
from catopt_dsl.gc_pause import gc_paused
from catopt_dsl.resources import grammar_path
from catopt_dsl.syntax.grammar import _NamesEverywhere, parse_fast, parser
from catopt_dsl.syntax.guard import DepthTree, guarded
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


@lru_cache(maxsize=1)
def _lark_own_chain() -> Lark:
    """The grammar with Lark's own tree builder (its wrapper chain and Meta objects)."""
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        postlex=_NamesEverywhere(),
    )


_POSITION = ("line", "column", "end_line", "end_column",
             "container_line", "container_column", "container_end_line", "container_end_column")


def _same_tree(ours: Any, theirs: Any, path: str = "start") -> None:
    if isinstance(theirs, Tree):
        assert type(ours) is DepthTree, path
        assert ours.data == theirs.data, path
        assert ours.empty == theirs.meta.empty, path
        for attr in _POSITION:
            assert getattr(ours, attr, None) == getattr(theirs.meta, attr, None), f"{path}: {attr}"
        assert len(ours.children) == len(theirs.children), path
        for k, (a, b) in enumerate(zip(ours.children, theirs.children)):
            _same_tree(a, b, f"{path}/{theirs.data}[{k}]")
    elif isinstance(theirs, Token):
        fields = ("type", "value", "start_pos", "line", "column", "end_line", "end_column", "end_pos")
        assert isinstance(ours, Token), path
        assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields], path
    else:
        assert ours is None and theirs is None, path


SHAPES = [
    "catopt 1;\nLocalProblem a { var x: float[3]; minimize ((x[0])) + -(2) * (x[1:2][0]') + sum((x)); }\n",
    "catopt 1;\nLocalProblem a[i in (0)..(3)] { param p: float[2] = [(1), 2,]; var x: float; minimize square(x - p[(i) - i]); }\n",
    "",
    "catopt 1;\n",
    # comments, CRLF-free multi-line strings and keywords next to names
    "catopt 1;\n// c\nschema S v1 { /* a\nb */ h: float[2]; }\nLocalProblem parameter_x { var x: float; minimize x; }\n",
]


@pytest.mark.parametrize(
    "text",
    SHAPES + [p.read_text(encoding="utf-8") for p in SPECS],
    ids=[f"shape{k}" for k in range(len(SHAPES))] + [p.stem for p in SPECS],
)
def test_the_tree_and_its_positions_are_the_ones_lark_builds(text: str) -> None:
    """The parser's own tree builder (grammar.py) gives Lark's tree: the same nodes, children and
    positions, containers included (parenthesised and inlined nodes are where they differ)."""
    with guarded():
        ours = parse_clean(text)
    assert ours is not None and ours.tree is not None
    _same_tree(ours.tree, _lark_own_chain().parse(text))


@pytest.mark.parametrize(
    "text",
    SHAPES + [p.read_text(encoding="utf-8") for p in SPECS],
    ids=[f"shape{k}" for k in range(len(SHAPES))] + [p.stem for p in SPECS],
)
def test_the_limits_count_what_they_count_in_larks_loop(text: str) -> None:
    """The clean loop runs the lexer callbacks as Lark's loop does: the guard ends with the same
    counts (so every limit trips at the same token) and the same comments."""
    with guarded(collect_comments=True) as ours:
        parse_fast(text)
    with guarded(collect_comments=True) as theirs:
        parser().parse(text)
    assert (ours.tokens, ours.depth, ours.lists, ours.signs) == (theirs.tokens, theirs.depth, theirs.lists, theirs.signs)
    assert ours.comments == theirs.comments


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


def test_a_loaded_spec_is_freed_without_the_cycle_collector(tmp_path: Path) -> None:
    """The loader leaves no reference cycle around the modules it parsed: dropping the result
    frees the AST at once (a cycle kept it until a full collection, which the compiler's paused
    collector may not run for a long time)."""
    import weakref

    from catopt_dsl.syntax.loader import load_spec

    (tmp_path / "lib.cat").write_text("catopt 1;\nschema S v1 { h: float; }\n", encoding="utf-8")
    (tmp_path / "main.cat").write_text('catopt 1;\nimport "lib.cat";\n' + SHAPES[0].split("\n", 1)[1], encoding="utf-8")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        loaded = load_spec(tmp_path / "main.cat", DiagnosticSink())
        assert loaded.root is not None and len(loaded.modules) == 2
        refs = [weakref.ref(m) for m in loaded.modules]
        del loaded
        assert [r() for r in refs] == [None, None]
    finally:
        if was_enabled:
            gc.enable()
