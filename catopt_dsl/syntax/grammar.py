"""Loads `grammar/catopt.lark` once (LALR, positions propagated) and caches the parser."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from lark import Lark, Token
from lark.lark import PostLex
from lark.lexer import PatternStr
from lark.parse_tree_builder import ChildFilterLALR, ChildFilterLALR_NoPlaceholders, maybe_create_child_filter

from catopt_dsl.resources import grammar_path
from catopt_dsl.syntax.guard import DepthTree, on_comment, on_token


class _NamesEverywhere(PostLex):
    """Lexes NAME in every parser state (Lark's ``always_accept``).

    The contextual lexer only tries the terminals a state accepts. Where a keyword but no name can
    follow, a misspelt keyword then lexes as a keyword prefix plus a remainder (`parameter` as
    `param` + `eter`, `subject_to` as `subject` + `_to`), and the error quotes the remainder. With
    NAME always tried, Lark's keyword table retypes a NAME only when it *is* a keyword, so a
    misspelling arrives as one NAME token that the error can quote and correct.
    """

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


@lru_cache(maxsize=1)
def parser() -> Lark:
    text = grammar_path().read_text(encoding="utf-8")
    # LALR with the contextual lexer: linear time, and it lets INT and NUMBER coexist because each
    # parser state only admits the terminals that can follow. `cache=False`: the grammar is small and
    # loading it takes ~30 ms; a cache file would be written next to the installed package.
    # `tree_class` and the lexer callbacks check the resource limits while the parser runs
    # (catopt_dsl/syntax/guard.py). The callback table is filled once the terminals are known: Lark
    # keeps a reference to it and builds its scanners on first use.
    callbacks: dict = {"NAME": on_token}  # non-empty: Lark replaces an empty table with its own
    lark = Lark(
        text,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        tree_class=DepthTree,
        lexer_callbacks=callbacks,
        postlex=_NamesEverywhere(),
    )
    ignored = set(lark.ignore_tokens)
    callbacks.update({t.name: on_token for t in lark.terminals if t.name not in ignored})
    # Lark calls a callback for an ignored terminal too: comments reach the formatter this way.
    callbacks.update({"COMMENT": on_comment, "BLOCK_COMMENT": on_comment})
    _install_tree_callbacks(lark)
    return lark


# ---------------------------------------------------------------------------------------------
# Tree building: Lark's wrapper chain, one closure per rule
# ---------------------------------------------------------------------------------------------
#
# Lark builds a node per reduction through a chain of wrappers (ExpandSingleChild, ChildFilter,
# PropagatePositions, then ``tree_class``), each a Python call, and the position step looks every
# attribute up with a fallback (``getattr(meta, 'container_line', meta.line)``). On a 10,000-object
# spec that chain was a third of the front end's time. The closures below do the same in one call
# per reduction: the same children (the rule's filter, read from Lark's own ``maybe_create_child_filter``
# so the two cannot disagree), the same single-child inlining and the same positions (a node
# spans its first child's container to its last's; an inlined node keeps its own span and widens
# its container). tests/language/test_parse_paths.py compares the trees, positions included, with
# the ones Lark's own chain builds.


def _install_tree_callbacks(lark: Lark) -> None:
    """Replace Lark's per-rule tree builders with :func:`_rule_callback`'s. If this Lark keeps its
    callbacks elsewhere, its own chain stays (slower, same trees: a DepthTree is its own meta)."""
    table = getattr(getattr(getattr(lark.parser, "parser", None), "parser", None), "callbacks", None)
    if not isinstance(table, dict):  # pragma: no cover - a Lark whose internals moved
        return
    keep_all = bool(lark.options.keep_all_tokens)
    for rule in list(table):
        if not hasattr(rule, "expansion"):  # pragma: no cover - terminal callbacks (none today)
            continue
        options = rule.options
        name = rule.alias or options.template_source or rule.origin.name
        empty: Any = options.empty_indices if lark.options.maybe_placeholders else None
        filter_ = maybe_create_child_filter(rule.expansion, keep_all or options.keep_all_tokens, False, empty)
        include: tuple[tuple[int, bool, int], ...] | None = None
        append_none = 0
        if filter_ is not None:
            if filter_.func is ChildFilterLALR:
                include = tuple(filter_.args[0])
                append_none = filter_.args[1]
            elif filter_.func is ChildFilterLALR_NoPlaceholders:
                include = tuple((i, expand, 0) for i, expand in filter_.args[0])
            else:  # pragma: no cover - an unknown filter: keep Lark's chain for every rule
                return
        table[rule] = _rule_callback(name, include, append_none, bool(options.expand1 and not rule.alias))


def _rule_callback(
    name: str, include: tuple[tuple[int, bool, int], ...] | None, append_none: int, expand1: bool
) -> Callable[[list[Any]], Any]:
    def build(children: list[Any]) -> Any:
        if include is None:
            kept = children
        else:
            kept = []
            for i, expand, nones in include:
                if nones:
                    kept += [None] * nones
                if expand:
                    if kept:
                        kept += children[i].children
                    else:  # left recursion: grow the helper's list (Lark's ChildFilterLALR does the same)
                        kept = children[i].children
                else:
                    kept.append(children[i])
            if append_none:
                kept += [None] * append_none
        if expand1 and len(kept) == 1:
            node = kept[0]
            if type(node) is not DepthTree:
                return node  # a token or a placeholder: Lark gives it no position
        else:
            node = DepthTree(name, kept)
        # Positions (Lark's PropagatePositions): from the first child that has one to the last.
        line: Any  # a token's position is Optional in Lark's types; the lexer always sets it
        column: Any
        end_line: Any
        end_column: Any
        for c in children:
            if type(c) is DepthTree:
                if not c.empty:
                    line, column = c.container_line, c.container_column
                    break
            elif isinstance(c, Token):
                line, column = c.line, c.column
                break
        else:
            return node
        for c in reversed(children):
            if type(c) is DepthTree:
                if not c.empty:
                    end_line, end_column = c.container_end_line, c.container_end_column
                    break
            elif isinstance(c, Token):
                end_line, end_column = c.end_line, c.end_column
                break
        if node.empty:
            node.line, node.column, node.end_line, node.end_column = line, column, end_line, end_column
            node.empty = False
        node.container_line, node.container_column = line, column
        node.container_end_line, node.container_end_column = end_line, end_column
        return node

    return build
#: How "expected ..." lists name a terminal: a list of alternatives, each as the user writes it.
TERMINAL_NAMES: dict[str, tuple[str, ...]] = {
    "NAME": ("a name",),
    "INT": ("an integer",),
    "NUMBER": ("a number",),
    "STRING": ('a string "..."',),
    "VERSION": ("a schema version like `v1`",),
    "SCALAR_TYPE": ("a type (`float`, `int`, `bool`)",),
    "SENSE": ("`minimize`", "`maximize`"),
    "REL": ("`<=`", "`>=`", "`==`"),
    "ADD_OP": ("`+`", "`-`"),
    "MUL_OP": ("`*`", "`/`", "`@`"),
    "NEG_OP": ("`-`",),
    "ITEM_KIND": ("`LocalProblem`", "`Morphism`", "`Limit`"),
    "BOOL": ("`true`", "`false`"),
    "SUBJECT": ("`subject to`",),
    "QUOTE": ("`'` (transpose)",),
    "$END": ("end of file",),
}

#: Keyword terminals written as a regular expression, and the words each stands for.
_REGEX_KEYWORDS: dict[str, tuple[str, ...]] = {
    "SENSE": ("minimize", "maximize"),
    "SCALAR_TYPE": ("float", "int", "bool"),
    "BOOL": ("true", "false"),
    "ITEM_KIND": ("LocalProblem", "Morphism", "Limit"),
}


@lru_cache(maxsize=1)
def _literals() -> dict[str, str]:
    """Terminal name -> its literal text, for the terminals written as a string in the grammar."""
    return {t.name: t.pattern.value for t in parser().terminals if isinstance(t.pattern, PatternStr)}


def describe_terminal(name: str) -> tuple[str, ...]:
    """How an "expected" list shows a terminal (one entry per alternative)."""
    if name in TERMINAL_NAMES:
        return TERMINAL_NAMES[name]
    literal = _literals().get(name)
    if literal is not None:
        return (f"`{literal}`",)
    return (name.lower(),)


def spellings(name: str) -> tuple[str, ...]:
    """The words a keyword terminal stands for (``()`` for a terminal that is not a keyword)."""
    if name in _REGEX_KEYWORDS:
        return _REGEX_KEYWORDS[name]
    literal = _literals().get(name)
    return (literal,) if literal is not None and literal.isidentifier() else ()


def literal_terminal(text: str) -> str | None:
    """The terminal written as ``text`` in the grammar (``"->"``), or None."""
    for name, literal in _literals().items():
        if literal == text:
            return name
    return None


def keyword_terminal(word: str) -> str | None:
    """The terminal a keyword spelt ``word`` lexes as, or None for a plain name."""
    for name, words in _REGEX_KEYWORDS.items():
        if word in words and name != "ITEM_KIND":
            return name
    for name, literal in _literals().items():
        if literal == word:
            return name
    return None
