"""Limits the parser checks while it runs: tokens, bracket nesting, list lengths, token sizes, tree depth.

Checking after the parse is too late: a 4 MB ``x+x+...+x`` builds a two-million-level tree before
any check could look at it. Lark calls a *lexer callback* for every token it produces and builds
every tree node through ``tree_class``; both are hooked here, so the first token or node that
crosses a limit stops the parse at once with :class:`LimitExceeded`, after work proportional to the
limit rather than to the input.

The parser is built once and shared (``grammar.parser()``), so the per-parse counters live in a
thread-local :class:`Guard` that :func:`guarded` installs around one parse.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from catopt_dsl import limits
from catopt_dsl.errors import ErrorCode

_OPEN = {"LPAR", "LSQB", "LBRACE"}
_CLOSE = {"RPAR", "RSQB", "RBRACE"}


@dataclass(frozen=True)
class Where:
    line: int
    col: int
    end_line: int
    end_col: int


class LimitExceeded(Exception):
    """A limit crossed while parsing; carries the diagnostic's parts."""

    def __init__(self, code: ErrorCode, message: str, where: Where, help: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.where = where
        self.help = help


def _where(tok: Token) -> Where:
    line = tok.line or 1
    col = tok.column or 1
    end_line = tok.end_line or line
    end_col = tok.end_column or col + 1
    if end_line != line:
        end_line, end_col = line, col + 1
    return Where(line, col, end_line, max(end_col, col + 1))


class Guard:
    """The counters of one parse."""

    __slots__ = ("comments", "depth", "lists", "signs", "tokens")

    def __init__(self, collect_comments: bool = False) -> None:
        # (text, (line, col, end_line, end_col)) of each comment, for the formatter; None: not kept
        self.comments: list[tuple[str, tuple[int, int, int, int]]] | None = [] if collect_comments else None
        self.tokens = 0
        self.signs = 0  # consecutive unary signs: `- - - x` is right-recursive, so no node exists
        # until its operand arrives; counting the signs refuses a long run before it is all shifted
        self.depth = 0
        self.lists: list[int] = [0]  # commas per open bracket; index 0 is the top level

    def token(self, tok: Token) -> Token:
        self.tokens += 1
        if self.tokens > limits.MAX_TOKENS:
            raise LimitExceeded(
                ErrorCode.LIMIT,
                f"the file has more than {limits.MAX_TOKENS:,} tokens",
                _where(tok),
                "split the plan with `import`, use families instead of writing objects out, and load() data",
            )
        kind = tok.type
        if kind == "NEG_OP":
            self.signs += 1
            if self.signs >= limits.MAX_TREE_DEPTH:
                raise LimitExceeded(
                    ErrorCode.TOO_DEEP,
                    f"expression nests more than {limits.MAX_TREE_DEPTH} levels deep",
                    _where(tok),
                    "write the sign once",
                )
            return tok
        self.signs = 0
        if kind in _OPEN:
            self.depth += 1
            if self.depth > limits.MAX_BRACKET_DEPTH:
                raise LimitExceeded(
                    ErrorCode.TOO_DEEP,
                    f"brackets nest more than {limits.MAX_BRACKET_DEPTH} levels deep",
                    _where(tok),
                    "split the expression into params",
                )
            self.lists.append(0)
        elif kind in _CLOSE:
            if self.depth > 0:
                self.depth -= 1
                self.lists.pop()
        elif kind == "COMMA":
            self.lists[-1] += 1
            if self.lists[-1] >= limits.MAX_LIST_ELEMENTS:
                raise LimitExceeded(
                    ErrorCode.LIMIT,
                    f"more than {limits.MAX_LIST_ELEMENTS:,} entries in one list",
                    _where(tok),
                    "put large arrays in a .npy or .csv file and load() them",
                )
        elif kind == "SEMICOLON" and self.depth == 0:
            self.lists[0] = 0
        elif kind == "NAME" and len(tok) > limits.MAX_NAME_CHARS:
            raise LimitExceeded(
                ErrorCode.LIMIT,
                f"a name of {len(tok):,} characters; names have at most {limits.MAX_NAME_CHARS}",
                _where(tok),
            )
        elif kind in ("INT", "NUMBER", "VERSION") and len(tok) > limits.MAX_NUMBER_CHARS:
            raise LimitExceeded(
                ErrorCode.LIMIT,
                f"a number literal of {len(tok):,} characters; number literals have at most {limits.MAX_NUMBER_CHARS}",
                _where(tok),
                "integers must fit in 64 bits and floats in double precision anyway",
            )
        return tok


_state = threading.local()


def current_guard() -> Guard | None:
    """The guard of the parse running on this thread, if any."""
    return getattr(_state, "guard", None)


_current = current_guard  # the name the rest of this module uses


def on_token(tok: Token) -> Token:
    """The lexer callback registered for every terminal the parser sees."""
    guard = _current()
    return guard.token(tok) if guard is not None else tok


def on_comment(tok: Token) -> Token:
    """The lexer callback for comments (which the parser never sees): kept when asked for."""
    guard = _current()
    if guard is not None and guard.comments is not None:
        line = tok.line or 1
        col = tok.column or 1
        guard.comments.append((str(tok), (line, col, tok.end_line or line, tok.end_column or col + len(tok))))
    return tok


class DepthTree(Tree):
    """A parse-tree node that knows its height and where it lies, and refuses to exceed ``MAX_TREE_DEPTH``.

    Lark builds a node when it reduces a rule, children first, so the height is known at once and a
    too-deep chain is refused at its ``MAX_TREE_DEPTH``-th operator.

    The node is its own ``meta`` (the attributes Lark's ``Meta`` has, as slots): a separate meta
    object per node, or a dict of attributes, was most of a large file's parse tree. An unset
    position slot reads as missing, as an unset attribute does on Lark's ``Meta``, which is how
    Lark's position step tells a node whose position is not known yet;
    :func:`catopt_dsl.syntax.grammar.parser` installs a faster equivalent of that step.
    """

    __slots__ = (
        "_meta",
        "children",
        "column",
        "container_column",
        "container_end_column",
        "container_end_line",
        "container_line",
        "data",
        "empty",
        "end_column",
        "end_line",
        "height",
        "line",
    )
    empty: bool
    height: int
    line: int
    column: int
    end_line: int
    end_column: int
    container_line: int
    container_column: int
    container_end_line: int
    container_end_column: int

    def __init__(self, data: str, children: list[Any], meta: Any = None) -> None:
        # Tree.__init__'s assignments, inline: one node per rule reduction makes the call count.
        self.data = data
        self.children = children
        self.empty = True
        if data[0] == "_":
            # Lark's helper for `(",", expr)*` grows one shared child list per element and is
            # inlined into its parent, which measures the flattened list once; measuring every
            # helper would be quadratic in the list's length.
            self.height = 0
            return
        h = 0
        for c in children:
            if type(c) is DepthTree and c.height > h:
                h = c.height
        self.height = h + 1
        if h >= limits.MAX_TREE_DEPTH:
            tok = _first_token(self)
            where = _where(tok) if tok is not None else Where(1, 1, 1, 2)
            raise LimitExceeded(
                ErrorCode.TOO_DEEP,
                f"expression nests more than {limits.MAX_TREE_DEPTH} levels deep",
                where,
                "split it into params, or use `sum(...)` over a vector instead of a long chain of `+`",
            )

    @property
    def meta(self) -> Any:
        # Lark's position step (the fallback when the fast one cannot be installed) reads and
        # writes the position through ``meta``; the node holds it itself.
        return self


def _first_token(node: Any) -> Token | None:
    """The operator of a binary/unary node, else its first token (the node's meta is not set yet)."""
    for c in node.children:
        if isinstance(c, Token):
            return c
    for c in node.children:
        if isinstance(c, Tree):
            return _first_token(c)
    return None


@contextmanager
def guarded(collect_comments: bool = False) -> Iterator[Guard]:
    """Install a fresh :class:`Guard` for the parse run inside the ``with`` block."""
    previous = _current()
    guard = Guard(collect_comments)
    _state.guard = guard
    try:
        yield guard
    finally:
        _state.guard = previous


def callbacks(terminals: list[str]) -> dict[str, Callable[[Token], Token]]:
    return dict.fromkeys(terminals, on_token)
