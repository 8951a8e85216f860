"""The LALR driver with error recovery: every syntax error of a file, not only the first.

Lark's own ``parse()`` stops at the first error. This module feeds the tokens to Lark's
interactive parser itself, and when a token does not fit it records a :class:`SyntaxProblem` and
gets the parser going again, the way yacc-family parsers (and rustc, and mypy) do:

1. **Repair** when one small edit makes the token fit, checked on a copy of the parser first:
   insert a missing `;`, `)`, `]` or `}` (or the one punctuation the state needs, such as `:`),
   read a misspelt keyword as the keyword (`minimise` as `minimize`, `subject_to` as `subject to`),
   read `=` as `==` in a constraint, or drop a stray `;` after a block. The parse then goes on as
   if the edit had been made, so nothing that follows is lost.
2. Otherwise **panic**: skip tokens up to the next `;` or `}` (or a keyword that starts a
   statement or an item), pop parser states back to the enclosing statement list, and carry on
   from there. The broken statement is dropped.

A character no token starts with (`$`, `#`, `<`, `^`, `≤`) is reported and skipped, or read as
the ASCII operator it stands for (`≤` as `<=`, `<` as `<=`) so that the rest of the line parses.

Cascades are held back by the rule yacc calls ``yyerrstatus``: after a skipped character, the next
few tokens must be taken before another error is reported. A file whose syntax fails produces no
AST at all (parser.py), so a repaired statement never reaches the checker: repairs only decide
what is reported next.

The problems are plain data (no Lark types); :mod:`catopt_dsl.syntax.hints` turns them into
messages. Resource limits (:mod:`catopt_dsl.syntax.guard`) still stop the parse at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from copy import copy
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from catopt_dsl import limits
from catopt_dsl.syntax.grammar import (
    Refused,
    keyword_terminal,
    literal_terminal,
    parse_fast,
    parser,
    spellings,
)
from catopt_dsl.syntax.guard import LimitExceeded
from catopt_dsl.syntax.hints import keyword_for

#: Tokens that end a statement: panic mode skips to one of these.
_SYNC = frozenset({"SEMICOLON", "RBRACE"})
#: Keywords that can only start a statement or an item: panic mode also stops before one.
_STARTERS = frozenset(
    {
        "PARAM", "VAR", "SENSE", "SUBJECT", "SCHEMA", "SHAREDVARIABLES", "LOCALPROBLEM", "MORPHISM",
        "LIMIT", "COLIMIT", "FUNCTOR", "PLANDELTA", "IMPORT", "ADD", "REMOVE", "SET", "MIGRATE",
    }
)
#: Tokens a repair may insert, most likely first.
_INSERTABLE = ("SEMICOLON", "RPAR", "RSQB", "RBRACE", "COMMA")
#: What a repair may insert in a declaration: the words and marks between its names.
_STRUCTURAL = frozenset({"COLON", "EQUAL", "ON", "IN", "OF", "TO", "CARRIES", "VIA"})
#: Characters that stand for an ASCII operator: read as that operator, after reporting them.
SUBSTITUTES: dict[str, tuple[str, str]] = {
    "<": ("REL", "<="),
    ">": ("REL", ">="),
    "≤": ("REL", "<="),
    "≥": ("REL", ">="),
    "⩽": ("REL", "<="),
    "⩾": ("REL", ">="),
    "−": ("ADD_OP", "-"),
    "×": ("MUL_OP", "*"),
    "·": ("MUL_OP", "*"),
}
#: Tokens taken after a skipped character before the next error is reported.
_QUIET = 2
#: The recent tokens a problem remembers (hints look back at them).
_HISTORY = 4


@dataclass(frozen=True)
class Tok:
    """A token as the hints see it: its terminal, its text and where it lies."""

    type: str
    text: str
    line: int
    col: int
    end_line: int
    end_col: int
    start: int  # offset in the text
    end: int

    @staticmethod
    def of(t: Token) -> Tok:
        line = t.line or 1
        col = t.column or 1
        start = t.start_pos or 0
        return Tok(
            t.type,
            str(t),
            line,
            col,
            t.end_line or line,
            t.end_column or col + len(str(t)),
            start,
            t.end_pos if t.end_pos is not None else start + len(str(t)),
        )


@dataclass(frozen=True)
class Repair:
    """What the parser did to go on: ``insert`` tokens before the found one, ``replace`` the found
    token by others, ``delete`` it, or ``skip`` a character."""

    kind: str
    types: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()  # what a ``replace`` reads instead, as the user would write it
    swallow: int = 0  # characters after the token that the edit takes along (`=<` read as `<=`)
    spelling: bool = False  # a ``replace`` that reads a misspelt keyword as the keyword


@dataclass(frozen=True)
class SyntaxProblem:
    """One syntax error: the token (or character) that did not fit and what the parser knew then."""

    found: Tok  # for a bad character: a one-character Tok of type "$CHAR"; at the end: "$END"
    expected: frozenset[str]  # terminals the parser would have taken (checked, not LALR's guess)
    before: tuple[Tok, ...]  # the last tokens the parser took, oldest first
    statement: Tok | None  # the first token of the statement the error is in
    unclosed: Tok | None  # the innermost bracket still open: `{`, `(` or `[`
    repair: Repair | None
    next_char: str  # the character right after the found token ("" at the end)


class _TooMany(Exception):
    """MAX_DIAGNOSTICS syntax errors found: the parse stops."""


@dataclass
class Outcome:
    tree: Tree | None  # None when there were syntax errors
    problems: list[SyntaxProblem]
    stopped: str | None = None  # why the parse stopped early: "comment", "long-string", "limit", "too-many"
    stop_at: Tok | None = None
    limit: LimitExceeded | None = None  # the resource limit that stopped it


class _Driver:
    def __init__(self, text: str) -> None:
        self.text = text
        self.ip = parser().parse_interactive(text)
        self.ps = self.ip.parser_state
        self.thread = self.ip.lexer_thread
        conf = copy(self.ps.parse_conf)
        conf.callbacks = {}  # trials build no trees: they cannot touch the real parse's values
        self.trial_conf = conf
        self.stream: Iterator[Token] = self.thread.lex(self.ps)
        self.problems: list[SyntaxProblem] = []
        self.history: list[Tok] = []
        self.statement: Tok | None = None
        self.quiet = 0
        self.panic = False
        self.skipped = 0  # `{` met while skipping, not yet closed
        self.stuck: set[str] = set()  # token types no state on the (unchanged) stack takes while skipping
        self.undo: tuple[list[Any], list[Any], list[Tok], Tok | None, Token] | None = None
        # Lark's contextual lexer keeps a lexer over every terminal (``root_lexer``); reach it
        # through the post-lexer connector when present.
        lexer = getattr(self.thread.lexer, "lexer", self.thread.lexer)
        self.root = getattr(lexer, "root_lexer", None)

    # -- tokens ------------------------------------------------------------------------------------
    def next_token(self) -> Token | UnexpectedCharacters | None:
        """The next token, an UnexpectedCharacters for a character no token starts with, or None at
        the end. A token the contextual lexer finds only in Lark's root lexer comes back as a token.

        While skipping (panic), tokens come from the root lexer, which knows every terminal: the
        keyword that starts the next statement is then a keyword, not a NAME of the broken state."""
        if self.panic and self.root is not None:
            try:
                return self.root.next_token(self.thread.state, self.ps)  # type: ignore[no-any-return,arg-type]
            except EOFError:
                return None
            except UnexpectedCharacters as exc:
                return exc
        try:
            return next(self.stream)
        except StopIteration:
            return None
        except UnexpectedToken as exc:  # lexed by the root lexer: a token, just not one for here
            self.stream = self.thread.lex(self.ps)
            return exc.token  # type: ignore[no-any-return]
        except UnexpectedCharacters as exc:
            self.stream = self.thread.lex(self.ps)
            return exc

    def advance(self, n: int) -> None:
        """Move the lexer ``n`` characters on (past a character or a line no token can start)."""
        state = self.thread.state
        assert state is not None  # the thread was made from the text
        counter = state.line_ctr
        pos = counter.char_pos
        counter.feed(self.text[pos : pos + n])
        self.stream = self.thread.lex(self.ps)

    def at_eof(self) -> Token:
        text = self.text
        line = text.count("\n") + 1
        col = len(text) - (text.rfind("\n") + 1) + 1
        return Token("$END", "", len(text), line, col, line, col, len(text))

    # -- the parser --------------------------------------------------------------------------------
    def fits(self, *types: str) -> bool:
        """Would the parser take tokens of these types, one after the other, from here?"""
        trial = self.ps.copy(deepcopy_values=False)
        trial.parse_conf = self.trial_conf
        try:
            for t in types:
                trial.feed_token(Token(t, ""), t == "$END")
        except UnexpectedToken:
            return False
        return True

    def expected(self) -> frozenset[str]:
        choices = self.ps.parse_conf.parse_table.states[self.ps.position]
        return frozenset(t for t in choices if t.isupper() and self.fits(t))

    def feed(self, tok: Token) -> Any:
        result = self.ps.feed_token(tok, tok.type == "$END")
        if tok.type != "$END":
            self._took(tok)
        return result

    def _took(self, tok: Token) -> None:
        t = Tok.of(tok)
        self.history = [*self.history[-(_HISTORY - 1):], t]
        if self.statement is None or (len(self.history) > 1 and self.history[-2].type in ("SEMICOLON", "LBRACE", "RBRACE")):
            self.statement = t
        if self.quiet:
            self.quiet -= 1

    def unclosed(self) -> Tok | None:
        """The innermost bracket the parser still holds open (an opening bracket stays on the value
        stack until the rule that closes it is reduced)."""
        for v in reversed(self.ps.value_stack):
            if isinstance(v, Token) and v.type in ("LBRACE", "LPAR", "LSQB"):
                return Tok.of(v)
        return None

    def pop_to(self, accept: tuple[str, ...]) -> bool:
        """Pop parser states until one takes a token of one of ``accept``; False (and nothing
        popped) if none on the stack does."""
        stack = self.ps.state_stack
        for keep in range(len(stack), 0, -1):
            trial = self.ps.copy(deepcopy_values=False)
            del trial.state_stack[keep:]
            del trial.value_stack[keep - 1 :]
            trial.parse_conf = self.trial_conf
            for t in accept:
                probe = trial.copy(deepcopy_values=False)
                try:
                    probe.feed_token(Token(t, ""), t == "$END")
                except UnexpectedToken:
                    continue
                del self.ps.state_stack[keep:]
                del self.ps.value_stack[keep - 1 :]
                return True
        return False

    # -- problems ----------------------------------------------------------------------------------
    def report(self, found: Tok, repair: Repair | None) -> None:
        if self.quiet:
            return
        nxt = self.text[found.end : found.end + 1]
        self.problems.append(
            SyntaxProblem(found, self.expected(), tuple(self.history), self.statement, self.unclosed(), repair, nxt)
        )
        if len(self.problems) >= limits.MAX_DIAGNOSTICS:
            raise _TooMany  # no more would be shown; stop before a file of junk costs more work

    def repair_for(self, tok: Token) -> Repair | None:
        """The smallest edit that lets the parser take ``tok`` (checked on a copy), or None."""
        kind = tok.type
        text = str(tok)
        if kind == "$END":
            return None
        after = self.text[(tok.end_pos or 0) : (tok.end_pos or 0) + 1]
        last = self.history[-1] if self.history else None
        arrow = literal_terminal("->")
        # `=` in a constraint is `==` (and `=<`, `=>` are `<=`, `>=`); `=>` between objects is `->`.
        if kind == "EQUAL" and after == ">" and arrow is not None and self.fits(arrow):
            return Repair("replace", (arrow,), ("->",), swallow=1)
        if kind == "EQUAL" and self.fits("REL"):
            return Repair("replace", ("REL",), (after + "=" if after in ("<", ">") else "==",), 1 if after in ("<", ">") else 0)
        # `==` after a param's type is `=`: the lexer took the first `=` already.
        if kind == "EQUAL" and last is not None and last.type == "EQUAL" and last.end == tok.start_pos:
            return Repair("delete")
        if kind == "REL" and text == "==" and self.fits("EQUAL"):
            return Repair("replace", ("EQUAL",), ("=",))
        # `hours: x;` in a field map; `subject to: {`.
        if kind == "COLON" and self.fits("EQUAL"):
            return Repair("replace", ("EQUAL",), ("=",))
        if kind == "COLON" and self.fits("LBRACE") and not self.fits("COLON"):
            return Repair("delete")
        if kind in ("INT", "NUMBER") and text.isdigit() and self.fits("VERSION"):
            return Repair("replace", ("VERSION",), (f"v{text}",))  # `schema S 1`: versions are `v1`
        # `x >= 0 and x <= 1`: two constraints.
        if kind == "NAME" and text in ("and", "or") and self.fits("SEMICOLON"):
            return Repair("replace", ("SEMICOLON",), (";",))
        # A misspelt keyword, or words run together (`subject_to`, `subjectto`, `catopt1`).
        if kind == "NAME":
            words = keyword_for(text, self.expected())
            if words and self.fits(*(t for t, _ in words)):
                return Repair("replace", tuple(t for t, _ in words), tuple(w for _, w in words), spelling=True)
        # A stray `;` where a statement list goes on (after `}` or at the top level).
        if kind == "SEMICOLON" and (self.fits("RBRACE") or self.fits("$END")):
            return Repair("delete")
        for missing in _INSERTABLE:
            if self.fits(missing, kind):
                return Repair("insert", (missing,))
        for closers in (("RBRACE", "RBRACE"), ("SEMICOLON", "RBRACE"), ("SEMICOLON", "RBRACE", "RBRACE")):
            if kind in _STARTERS and self.fits(*closers, kind):
                return Repair("insert", closers)
        # The keyword or punctuation a declaration needs (`:`, `carries`, `on`, `=`, `{`). Not after
        # an expression: there an operator, `.` or `[` would fit and each is only a guess.
        expected = self.expected()
        if expected & {"ADD_OP", "MUL_OP"}:
            return None
        structural = _STRUCTURAL | {t for t in (literal_terminal("->"), literal_terminal("..")) if t is not None}
        for only in sorted(expected & structural) or sorted(expected & {"LBRACE"}):
            if self.fits(only, kind):
                return Repair("insert", (only,))
        # A wrong word where one keyword goes (`[i of 0..3]`).
        if kind == "NAME" or keyword_terminal(text) is not None:
            for only in sorted(expected & structural):
                if spellings(only) and self.fits(only):
                    return Repair("replace", (only,), (spellings(only)[0],))
        return None

    def apply(self, repair: Repair, tok: Token) -> None:
        """Go on as if the edit had been made. Token values do not matter: a file with a syntax
        error yields no tree."""
        if repair.kind == "delete":
            return
        if repair.kind == "insert":
            for t in repair.types:
                self.ps.feed_token(Token.new_borrow_pos(t, "", tok))
            self.feed(tok)
            return
        for t in repair.types:
            self.feed(Token.new_borrow_pos(t, str(tok), tok))
        if repair.swallow:
            self.advance(repair.swallow)

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> Outcome:
        try:
            return self.loop()
        except LimitExceeded as exc:  # stops at once; the errors found before it still count
            return Outcome(None, self.problems, "limit", None, exc)
        except _TooMany:
            return Outcome(None, self.problems, "too-many")

    def loop(self) -> Outcome:
        while True:
            got = self.next_token()
            if isinstance(got, UnexpectedCharacters):
                stop = self.bad_character(got)
                if stop is not None:
                    return stop
                continue
            tok = got if got is not None else self.at_eof()
            if tok.type == "$END":
                return self.finish(tok)
            if str(tok) == "/" and self.text.startswith("/*", tok.start_pos or 0):
                # A `/*` that lexes as a slash is a block comment that is never closed.
                return self.stop("comment", Tok.of(tok))
            self.take(tok)

    def take(self, tok: Token) -> None:
        if self.panic and not self.resync(tok):
            return
        # LALR may reduce on a token before it finds that the token does not fit; the snapshot
        # puts the stacks back, so the expected set and the repairs see the state before it.
        states, values = list(self.ps.state_stack), list(self.ps.value_stack)
        history, statement = self.history, self.statement
        try:
            self.feed(tok)
        except UnexpectedToken:
            self.ps.state_stack[:] = states
            self.ps.value_stack[:] = values
        else:
            # A keyword that starts a statement lexes as a NAME where a name may go (`LocalProblem`
            # inside a `subject to` block whose `}` is missing). Remember how to take it back: if
            # the next token does not fit, the keyword was the real problem.
            starts = tok.type == "NAME" and self.statement is not None and self.statement.start == tok.start_pos
            word = keyword_terminal(str(tok)) if starts else None
            self.undo = (states, values, history, statement, tok) if word in _STARTERS else None
            return
        undo, self.undo = self.undo, None
        if undo is not None:
            states, values, self.history, self.statement, keyword = undo
            self.ps.state_stack[:] = states
            self.ps.value_stack[:] = values
            self.fail(keyword)
            self.take(tok)
            return
        self.fail(tok)

    def fail(self, tok: Token) -> None:
        """``tok`` does not fit: report it, then repair or skip."""
        # The contextual lexer reads a keyword as a NAME where the state takes no such keyword
        # (`minimize` after a declaration that lacks its `;`): judge it as the keyword it is.
        word = keyword_terminal(str(tok)) if tok.type == "NAME" else None
        if word is not None:
            tok = Token.new_borrow_pos(word, str(tok), tok)
        repair = self.repair_for(tok)
        self.report(Tok.of(tok), repair)
        if repair is not None:
            self.apply(repair, tok)
            return
        self.panic = True
        self.skipped = 0
        if self.resync(tok):
            self.take(tok)

    def resync(self, tok: Token) -> bool:
        """In panic mode: True once ``tok`` is where parsing can go on (the parser's stack popped to
        take it); a `;` that ends the broken statement is consumed here. A block `{ ... }` met
        while skipping is skipped whole, so its statements do not resynchronise outside it."""
        kind = tok.type
        if kind == "LBRACE":
            self.skipped += 1
            return False
        if self.skipped:
            if kind == "RBRACE":
                self.skipped -= 1
                if not self.skipped and self.pop_to(("RBRACE", "$END")):
                    self.calm()  # the skipped block ended what the error broke
            return False
        if kind == "SEMICOLON":
            if self.pop_to(("RBRACE", "$END")):
                self.calm()
                self._took(tok)
            return False
        if (kind == "RBRACE" or kind in _STARTERS) and kind not in self.stuck:
            # The stack does not change while skipping: a type that found no state once never will.
            if self.pop_to((kind,)):
                self.calm()
                return True
            self.stuck.add(kind)
        return False

    def calm(self) -> None:
        """Leave panic mode: lex in the parser's context again."""
        self.panic = False
        self.stuck.clear()
        self.stream = self.thread.lex(self.ps)

    def bad_character(self, exc: UnexpectedCharacters) -> Outcome | None:
        pos = exc.pos_in_stream or 0
        ch = self.text[pos] if pos < len(self.text) else ""
        line, col = exc.line, exc.column
        found = Tok("$CHAR", ch, line, col, line, col + 1, pos, pos + 1)
        if ch == '"':
            if _string_problem(self.text, pos) == "long":
                return self.stop("long-string", found)
            if not self.panic:
                self.report(Tok("$STRING", ch, line, col, line, col + 1, pos, pos + 1), None)
                self.panic = True
            self.skip_line(pos)
            return None
        if self.text.startswith("/*", pos):
            return self.stop("comment", found)
        if self.panic or self.quiet:
            # Skipping, or just reported one: a run of junk costs one step, not one error each.
            m = _TOKEN_START.search(self.text, pos + 1)
            self.advance((m.start() if m else len(self.text)) - pos)
            return None
        if ch == "#" and (pos == 0 or self.text[pos - 1] in " \t\n"):
            # A comment in another language: the rest of the line goes with it.
            self.report(found, Repair("skip"))
            self.skip_line(pos)
            return None
        sub = SUBSTITUTES.get(ch)
        if sub is not None and sub[0] == "ADD_OP" and not self.fits("ADD_OP"):
            sub = ("NEG_OP", "-")
        if sub is not None and self.fits(sub[0]):
            self.report(found, Repair("replace", (sub[0],), (sub[1],)))
            self.advance(1)
            self.feed(Token(sub[0], sub[1], pos, line, col, line, col + 1, pos + 1))
            return None
        self.report(found, Repair("skip"))
        self.quiet = max(self.quiet, _QUIET)
        self.advance(1)
        return None

    def skip_line(self, pos: int) -> None:
        eol = self.text.find("\n", pos)
        self.advance((eol if eol >= 0 else len(self.text)) - pos)

    def stop(self, why: str, where: Tok) -> Outcome:
        return Outcome(None, self.problems, why, where)

    def finish(self, end: Token) -> Outcome:
        if not self.panic:
            try:
                tree = self.feed(end)
            except UnexpectedToken:
                self.report(Tok.of(end), None)
            else:
                if not self.problems:
                    return Outcome(tree, [])
        return Outcome(None, self.problems)


#: Token values for inserted or substituted punctuation (kept anonymous tokens need none).
_VALUE: dict[str, str] = {
    "SEMICOLON": ";", "RPAR": ")", "RSQB": "]", "RBRACE": "}", "COLON": ":", "EQUAL": "=",
    "LBRACE": "{", "LPAR": "(", "LSQB": "[", "COMMA": ",",
}


_STRING_STOP = re.compile(r'["\\\n]')
#: A character some token (or a comment) can start with: where skipping junk stops.
_TOKEN_START = re.compile(r"""[A-Za-z0-9_"(){}\[\];:,.=<>+\-*/@']""")


def _string_problem(text: str, start: int) -> str:
    """Why the string literal opening at ``start`` did not lex: ``unterminated`` or ``long``."""
    i = start + 1
    limit = start + 1 + 2 * limits.MAX_STRING_CHARS + 2
    while True:
        m = _STRING_STOP.search(text, i, min(len(text), limit))
        if m is None:
            return "long" if limit < len(text) else "unterminated"
        c = m.group()
        if c == '"':
            return "long"
        if c == "\n":
            return "unterminated"
        if m.end() < len(text) and text[m.end()] == "\n":
            return "unterminated"
        i = m.end() + 1


def parse_clean(text: str) -> Outcome | None:
    """Parse ``text`` with Lark's loop (inlined: :func:`catopt_dsl.syntax.grammar.parse_fast`), the
    fast path for a file without syntax errors: the same parser, lexer callbacks and tree builder
    as the driver, without the driver's work per token (a snapshot of the stacks, the token
    history). None at a syntax error: :func:`parse_recovering` then parses the file again and
    reports every error.

    A resource limit crossed here is the driver's outcome too (Lark stops at the first syntax
    error, so none came before the limit, and the same tokens reach the same limit), so it is
    returned as the driver would: parsing a hostile file twice would double the bounded work.

    The driver also stops at a ``/*`` that lexes as a slash (a block comment never closed); that
    can only happen when no ``*/`` follows the last ``/*``, so such a file goes to the driver too.
    Run it inside its own :func:`catopt_dsl.syntax.guard.guarded` block: a failed attempt leaves
    counts in its guard.
    """
    last = text.rfind("/*")
    if last >= 0 and text.find("*/", last + 2) < 0:
        return None
    try:
        return Outcome(parse_fast(text), [])
    except (Refused, UnexpectedInput):
        return None
    except LimitExceeded as exc:
        return Outcome(None, [], "limit", None, exc)


def parse_recovering(text: str) -> Outcome:
    """Parse ``text``; the tree when it has no syntax error, else every problem found (and the
    resource limit that stopped the parse, if one did). Run it inside
    :func:`catopt_dsl.syntax.guard.guarded`, which counts what the limits bound."""
    return _Driver(text).run()
