"""Loads `grammar/catopt.lark` once (LALR, positions propagated) and caches the parser."""

from __future__ import annotations

from functools import lru_cache

from lark import Lark

from catopt_dsl.resources import grammar_path
from catopt_dsl.syntax.guard import DepthTree, on_token


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
    )
    ignored = set(lark.ignore_tokens)
    callbacks.update({t.name: on_token for t in lark.terminals if t.name not in ignored})
    return lark
# Friendly names for terminals in "expected ..." messages.
TERMINAL_NAMES: dict[str, str] = {
    "NAME": "a name",
    "INT": "an integer",
    "NUMBER": "a number",
    "STRING": 'a string "..."',
    "SEMICOLON": "`;`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "EQUAL": "`=`",
    "DOT": "`.`",
    "VERSION": "a schema version like `v1`",
    "SCALAR_TYPE": "a type (`float`, `int`, `bool`)",
    "SENSE": "`minimize` or `maximize`",
    "REL": "`<=`, `>=` or `==`",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*`, `/` or `@`",
    "NEG_OP": "`-`",
    "ITEM_KIND": "`LocalProblem`, `Morphism` or `Limit`",
    "BOOL": "`true` or `false`",
    "STAR": "`*`",
    "$END": "end of file",
}
