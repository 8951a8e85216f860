"""Loads `grammar/catopt.lark` once (LALR, positions propagated) and caches the parser."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from lark import Lark, Token
from lark.lark import PostLex
from lark.lexer import PatternStr

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
    return lark
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
