"""Loads `grammar/catopt.lark` once (LALR, positions propagated) and caches the parser."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lark import Lark, Token
from lark.lark import PostLex
from lark.lexer import CallChain, PatternStr, UnlessCallback
from lark.parse_tree_builder import ChildFilterLALR, ChildFilterLALR_NoPlaceholders, maybe_create_child_filter

from catopt_dsl.resources import grammar_path
from catopt_dsl.syntax.guard import DepthTree, current_guard, on_comment, on_token


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
        # A plain str: Lark names rules with Token objects, whose == is a Python method, and every
        # later `tree.data == "..."` would call it.
        name = str(rule.alias or options.template_source or rule.origin.name)
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
        expand1 = bool(options.expand1 and not rule.alias)
        if expand1 and include is None and len(rule.expansion) == 1:
            # `?sum: product`: the child is the node, and its position is already its container's
            # (Lark's step would copy the child's container onto itself)
            table[rule] = _pass_through
        else:
            table[rule] = _rule_callback(name, include, append_none, expand1)


def _pass_through(children: list[Any]) -> Any:
    """The builder of a unit rule (``?expr: sum``): an expression's leaf climbs five of them."""
    return children[0]


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


# ---------------------------------------------------------------------------------------------
# The clean-file loop: Lark's contextual lexer and LALR loop, inlined
# ---------------------------------------------------------------------------------------------
#
# A file that parses goes through Lark's loop once; per token that loop is a generator step, two
# method calls into the lexer, a line counter's method and ``feed_token``'s attribute look-ups, about
# half of the front end's time. :func:`parse_fast` is the same loop with its tables in local
# variables: per parser state the same scanner (Lark's own compiled alternation, in its order, so
# the same terminal wins), the same lexer callbacks (keyword retyping, the guard's counters,
# comments), the same positions, the same parse table and tree builders. It refuses (``None`` from
# ``_tables()``, :class:`Refused` at a token) wherever Lark's loop would raise, and the caller then
# runs the recovering driver, so every diagnostic still comes from Lark's own machinery.


#: Token's constructor without the wrapper that checks for a deprecated keyword (Lark >= 1.2)
_new_token: Callable[..., Token] = getattr(Token, "_future_new", Token)


class Refused(Exception):
    """The fast loop met a token (or character) the parser does not take here."""


@dataclass(frozen=True)
class _Tables:
    # per parser state: (the scanner's compiled alternations, the lexer's callbacks, ignored types,
    # types that may contain a newline)
    lexers: dict[int, tuple[tuple[Any, ...], dict[str, Any], frozenset[str], frozenset[str]]]
    # state -> symbol -> (Shift, next state) or (Reduce, (builder, size, origin)); builder None: a unit rule
    states: dict[int, dict[str, tuple[Any, Any]]]
    shift: Any
    start: int
    end: int


@lru_cache(maxsize=1)
def _tables() -> _Tables | None:
    """The loop's tables, read from the parser that :func:`parser` built; None when this Lark keeps
    them elsewhere (the caller then uses Lark's own loop)."""
    lark = parser()
    try:
        from lark.parsers.lalr_analysis import Shift

        table = lark.parser.parser._parse_table
        contextual = lark.parser.lexer.lexer  # PostLexConnector -> ContextualLexer
        callbacks = lark.parser.parser.parser.callbacks
        lexers = {}
        built: dict[int, tuple[tuple[Any, ...], dict[str, Any], frozenset[str], frozenset[str]]] = {}
        for state, basic in contextual.lexers.items():
            if id(basic) not in built:
                scanner = basic.scanner  # built on first use, with its callbacks
                flags = basic.g_regex_flags
                built[id(basic)] = (
                    tuple(scanner._mres),
                    {str(kind): _keyword_table(cb, flags) or cb for kind, cb in basic.callback.items()},
                    frozenset(map(str, basic.ignore_types)),
                    frozenset(map(str, basic.newline_types)),
                )
            lexers[state] = built[id(basic)]
        # a unit rule's builder is None: the loop leaves its child on the stack
        reduce = {
            rule: (None if cb is _pass_through else cb, len(rule.expansion), str(rule.origin.name))
            for rule, cb in callbacks.items()
        }
        if not all(hasattr(rule, "expansion") for rule in callbacks) or type(lark.options.postlex) is not _NamesEverywhere:
            return None  # pragma: no cover - a terminal callback, or a post-lexer that rewrites tokens
        # The parse table with plain str keys (Lark's terminal and rule names are Token objects,
        # whose == is a Python method that every look-up whose hash matches would call) and each
        # reduction's (builder, size, origin) in place of its Rule (whose hash is a Python method).
        states = {
            state: {str(sym): (act, arg if act is Shift else reduce[arg]) for sym, (act, arg) in actions.items()}
            for state, actions in table.states.items()
        }
        return _Tables(lexers, states, Shift, table.start_states["start"], table.end_states["start"])
    except AttributeError:  # pragma: no cover - a Lark whose internals moved
        return None


def _keyword_table(callback: Any, flags: int) -> tuple[dict[str, str], Callable[[Token], bool] | None] | None:
    """Lark's keyword step as a table: a NAME that is spelt like a keyword becomes that keyword
    (Lark's ``UnlessCallback`` full-matches the name against an alternation of the keywords' literal
    texts; with plain, distinct literals that is a dictionary look-up), then the guard's callback
    runs when Lark's ``CallChain`` condition holds (its own function, called as Lark calls it).
    None: not that shape, or keywords with regex flags; the loop then calls the callback itself."""
    cond = None
    if isinstance(callback, CallChain) and isinstance(callback.callback1, UnlessCallback) and callback.callback2 is on_token:
        callback, cond = callback.callback1, callback.cond
    elif isinstance(callback, CallChain):
        return None
    if not isinstance(callback, UnlessCallback) or flags:
        return None
    table: dict[str, str] = {}
    for terminal in callback.scanner.terminals:
        pattern = terminal.pattern
        if not isinstance(pattern, PatternStr) or pattern.flags or pattern.value in table:
            return None
        table[pattern.value] = str(terminal.name)
    return table, cond


def parse_fast(text: str) -> Any:
    """Parse ``text`` to the tree :func:`parser`'s ``parse`` gives; :class:`Refused` where Lark's
    loop would raise a syntax error. Resource limits raise as they do in Lark's loop (the same
    callbacks run on the same tokens in the same order)."""
    tables = _tables()
    if tables is None:  # pragma: no cover
        return parser().parse(text)
    lexers, states, shift = tables.lexers, tables.states, tables.shift
    state_stack = [tables.start]
    value_stack: list[Any] = []
    pos = 0
    line = 1
    line_start = 0
    end = len(text)
    last: Token | None = None
    guard = current_guard()
    while pos < end:
        mres, lexer_callbacks, ignore, newline = lexers[state_stack[-1]]
        for mre in mres:
            m = mre.match(text, pos, end)
            if m:
                break
        else:
            raise Refused
        value = m.group(0)
        kind = m.lastgroup
        start, start_line, start_col = pos, line, pos - line_start + 1
        if kind in newline:
            newlines = value.count("\n")
            if newlines:
                line += newlines
                line_start = pos + value.rindex("\n") + 1
        pos += len(value)
        ignored = kind in ignore
        callback = lexer_callbacks.get(kind)
        if ignored and callback is None:
            continue
        tok = _new_token(kind, value, start, start_line, start_col, line, pos - line_start + 1, pos)
        if callback is on_token:  # the guard's counters, without looking the guard up per token
            if guard is not None:
                tok = guard.token(tok)
        elif type(callback) is tuple:  # a name that may be a keyword (_keyword_table)
            keyword = callback[0].get(value)
            if keyword is not None:
                tok.type = keyword
            cond = callback[1]
            if cond is not None and cond(tok) and guard is not None:
                tok = guard.token(tok)
        elif callback is not None:
            tok = callback(tok)
        if ignored:
            continue
        last = tok
        # Lark's ParserState.feed_token, inline (_feed below for the end): reduce, then shift.
        kind = tok.type
        while True:
            action = states[state_stack[-1]].get(kind)
            if action is None:
                raise Refused
            if action[0] is shift:
                state_stack.append(action[1])
                value_stack.append(tok)
                break
            build, size, origin = action[1]
            if build is None:  # a unit rule: its child stays where it is
                state_stack.pop()
                state_stack.append(states[state_stack[-1]][origin][1])
                continue
            if size:
                children = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                children = []
            value_stack.append(build(children))
            state_stack.append(states[state_stack[-1]][origin][1])
    end_tok = Token.new_borrow_pos("$END", "", last) if last is not None else Token("$END", "", 0, 1, 1)
    return _feed(end_tok, state_stack, value_stack, states, shift, tables.end)


def _feed(
    tok: Token,
    state_stack: list[int],
    value_stack: list[Any],
    states: dict[int, dict[str, tuple[Any, Any]]],
    shift: Any,
    end_state: int | None = None,
) -> Any:
    """Lark's ``ParserState.feed_token``: reduce as the table says, then shift ``tok``; at the end
    (``end_state`` given) reduce until the end state and return the tree."""
    kind = tok.type
    while True:
        action = states[state_stack[-1]].get(kind)
        if action is None:
            raise Refused
        if action[0] is shift:
            if end_state is not None:  # pragma: no cover - the table never shifts $END
                raise Refused
            state_stack.append(action[1])
            value_stack.append(tok)
            return None
        build, size, origin = action[1]
        if build is None:  # a unit rule: its child stays where it is
            state_stack.pop()
            state_stack.append(states[state_stack[-1]][origin][1])
        else:
            if size:
                children = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                children = []
            value = build(children)
            state_stack.append(states[state_stack[-1]][origin][1])
            value_stack.append(value)
        if end_state is not None and state_stack[-1] == end_state:
            return value_stack[-1]
