"""Syntax problems -> diagnostics: what was found, what would have fitted, and how to fix it.

:mod:`catopt_dsl.syntax.recover` records each problem as plain data; this module words it. Three
things make a syntax error readable:

* the **expected** list names what the parser would really take (checked on a copy of the parser,
  not LALR's merged guess) in the user's words: a run of operators is "an operator", the start of
  any expression is "an expression", the eight item keywords are "an item";
* a **hint** for each mistake people make (``HINTS`` below): `=` for `==`, `**` or `^` for a power,
  `<` for `<=`, a Unicode `≤`, a `#` comment, a constraint outside `subject to`;
* a keyword **did-you-mean** (`minimise`, `LocalProblm`, `subject_to`), which the parser also uses
  to read the word as the keyword and go on.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from catopt_dsl.diagnostics import Note, help_, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.span import Span
from catopt_dsl.syntax.grammar import describe_terminal, keyword_terminal, spellings

if TYPE_CHECKING:  # recover.py imports this module for keyword_for
    from catopt_dsl.syntax.recover import SyntaxProblem, Tok

#: the eight keywords that start an item
_ITEMS = frozenset({"SCHEMA", "SHAREDVARIABLES", "LOCALPROBLEM", "MORPHISM", "LIMIT", "COLIMIT", "FUNCTOR", "PLANDELTA"})
_ITEM_WORDS = "`LocalProblem`, `SharedVariables`, `Morphism`, `Limit`, `Colimit`, `Functor`, `PlanDelta` or `schema`"
#: what may start an expression, and what may follow one
_EXPR_START = frozenset({"NAME", "NUMBER", "INT", "BOOL", "LPAR", "LSQB", "NEG_OP", "STAR", "LOAD"})
_OPERATORS = frozenset({"ADD_OP", "MUL_OP", "QUOTE", "DOT", "LSQB", "LPAR"})
_CLOSERS = {"RBRACE": "}", "RPAR": ")", "RSQB": "]"}
_OPENERS = {"LBRACE": "{", "LPAR": "(", "LSQB": "["}
_CUTOFF = 0.7
_MAX_LISTED = 8

_POWER = "there is no power operator: write `square(e)` for e² (elementwise) or `sum_squares(e)` for the sum of squares of a vector"
_STRICT = "strict inequalities are not supported: write `{op}=` (a convex problem's feasible set is closed)"
_ASCII = "write `{op}`: operators are ASCII"
_UNICODE_OPERATORS = {"≤": "<=", "≥": ">=", "⩽": "<=", "⩾": ">=", "−": "-", "×": "*", "·": "*", "…": ".."}
#: hints for characters that start no token
HINTS: dict[str, str] = {
    "^": _POWER,
    "#": "comments start with `//` (or `/* ... */`)",
    "&": "constraints are separate statements: end each with `;`",
    "|": "constraints are separate statements: end each with `;`",
    "≠": "`!=` constraints are not convex, so catoptc has none",
    "%": "there is no `%` operator",
    "“": "strings are written with ASCII double quotes: \"...\"",
    "”": "strings are written with ASCII double quotes: \"...\"",
}


@dataclass(frozen=True)
class Report:
    """One diagnostic's parts, ready for the sink."""

    code: ErrorCode
    message: str
    span: Span
    notes: tuple[Note, ...]


#: Words from other languages that mean a keyword here.
ALIASES: dict[str, str] = {
    "double": "float",
    "real": "float",
    "integer": "int",
    "boolean": "bool",
    "minimise": "minimize",
    "maximise": "maximize",
    "min": "minimize",
    "max": "maximize",
    "st": "subject",
}


def keyword_for(word: str, expected: Iterable[str]) -> tuple[tuple[str, str], ...] | None:
    """How to read a NAME that does not fit where one of the ``expected`` keywords would: as that
    keyword misspelt (``minimise``, ``LocalProblm``, ``Param``, ``double``), or as words run
    together (``subject_to``, ``subjectto``, ``catopt1``). Each part is (terminal, text)."""
    wanted = {w: t for t in expected for w in spellings(t)}
    if not wanted:
        return None
    split = _split(word, wanted)
    if split is not None:
        return split
    alias = ALIASES.get(word.lower())
    if alias in wanted:
        return ((wanted[alias], alias),)
    best = _closest(word, wanted)
    return ((wanted[best], best),) if best is not None else None


def _split(word: str, wanted: dict[str, str]) -> tuple[tuple[str, str], ...] | None:
    """``subject_to`` / ``subjectto`` -> SUBJECT TO; ``catopt1`` -> CATOPT INT."""
    for first, terminal in wanted.items():
        if not word.startswith(first) or len(word) == len(first):
            continue
        rest = word[len(first):].lstrip("_")
        if rest.isdigit():
            return ((terminal, first), ("INT", rest))
        follow = keyword_terminal(rest)
        if follow is not None:
            return ((terminal, first), (follow, rest))
    return None


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    cands = sorted(candidates)
    for c in cands:
        if c.lower() == word.lower():
            return c
    match = difflib.get_close_matches(word.lower(), [c.lower() for c in cands], n=1, cutoff=_CUTOFF)
    if not match:
        return None
    return next(c for c in cands if c.lower() == match[0])


def expected_text(expected: Iterable[str]) -> str:
    """``expected`` in words: "`;` or an operator", "an expression", "an item (...)"."""
    names = set(expected)
    groups: list[str] = []
    if {"NAME", "LPAR"} <= names and names & {"NUMBER", "INT"}:
        groups.append("an expression")
        names -= _EXPR_START
    if {"ADD_OP", "MUL_OP"} <= names:
        groups.append("an operator")
        names -= _OPERATORS
    if names >= _ITEMS:
        groups.append(f"an item ({_ITEM_WORDS})")
        names -= _ITEMS
    end = "$END" in names
    names.discard("$END")
    words: list[str] = []
    for n in sorted(names, key=lambda n: describe_terminal(n)):
        words.extend(w for w in describe_terminal(n) if w not in words)
    words += groups
    if end:
        words.append("end of file")
    if len(words) > _MAX_LISTED:
        words = words[:_MAX_LISTED] + ["..."]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _after(tok: Tok, file: str) -> Span:
    """A one-column span just after ``tok`` (where a missing `;` goes)."""
    return Span(file, tok.end_line, tok.end_col, tok.end_line, tok.end_col + 1)


def _at(tok: Tok, file: str) -> Span:
    end_col = tok.end_col if tok.end_line == tok.line else tok.col + 1
    return Span(file, tok.line, tok.col, tok.line, max(end_col, tok.col + 1))


def _shown(tok: Tok) -> str:
    return tok.text if tok.end_line == tok.line else tok.text.split("\n", 1)[0] + "..."


def describe(p: SyntaxProblem, file: str) -> Report:
    """The diagnostic for one syntax problem."""
    found = p.found
    expected = expected_text(p.expected)
    notes: list[Note] = []
    if found.type == "$STRING":
        return Report(ErrorCode.LEX, "unterminated string", _at(found, file), (help_('close it with `"` on the same line'),))
    if found.type == "$CHAR":
        ch = found.text
        message = f"unexpected character `{ch}`" if ch.isprintable() else f"unexpected character U+{ord(ch):04X}"
        if expected:
            notes.append(note(f"expected {expected}"))
        hint = _char_hint(p)
        if hint:
            notes.append(help_(hint))
        return Report(ErrorCode.LEX, message, _at(found, file), tuple(notes))
    if found.type == "$END":
        message = "unexpected end of file"
    else:
        message = f"unexpected `{_shown(found)}`"
    if expected:
        notes.append(note(f"expected {expected}"))
    notes.extend(_token_hints(p, file))
    return Report(ErrorCode.SYNTAX, message, _at(found, file), tuple(notes))


def _char_hint(p: SyntaxProblem) -> str | None:
    ch = p.found.text
    glued = bool(p.before) and p.before[-1].end == p.found.start and p.before[-1].type == "NAME"
    if glued and ch not in "<>^" and ch not in _UNICODE_OPERATORS:
        return "names are made of ASCII letters, digits and `_`"
    if ch in "<>":
        return _STRICT.format(op=ch)
    if ch in _UNICODE_OPERATORS:
        return _ASCII.format(op=_UNICODE_OPERATORS[ch])
    if ch == "!":
        return "`!=` constraints are not convex, so catoptc has none" if p.next_char == "=" else "there is no `!` operator"
    return HINTS.get(ch)


def _token_hints(p: SyntaxProblem, file: str) -> list[Note]:
    found, repair, before = p.found, p.repair, p.before
    out: list[Note] = []
    last = before[-1] if before else None
    first = p.statement
    # -- what the parser repaired ------------------------------------------------------------------
    if found.text in ("and", "or") and found.type == "NAME":
        out.append(help_("constraints are separate statements: end each with `;` (`x >= 0; x <= 1;`)"))
        return out
    if repair is not None and repair.kind == "insert":
        missing = repair.types[0]
        if missing == "SEMICOLON" and last is not None:
            out.append(Note("help", "a `;` may be missing at the end of the previous statement", _after(last, file)))
        elif missing in _CLOSERS:
            closer = _CLOSERS[missing]
            count = sum(1 for t in repair.types if t == missing)
            where = "before this item" if found.type in _ITEMS else "before this"
            many = {1: "a", 2: "two", 3: "three"}.get(count, str(count))
            out.append(help_(f"{many} `{closer}` may be missing {where}"))
            if p.unclosed is not None and _OPENERS.get(p.unclosed.type) is not None:
                out.append(note(f"this `{p.unclosed.text}` is not closed", _at(p.unclosed, file)))
        elif last is not None:
            word = describe_terminal(missing)[0]
            out.append(Note("help", f"{word} may be missing here", _after(last, file)))
        return out
    if repair is not None and repair.kind == "delete":
        if found.type == "EQUAL":
            out.append(help_("write `=` to give a value (`==` is for equality constraints)"))
        elif found.type == "COLON":
            out.append(help_("remove this `:`: the block follows directly"))
        else:
            out.append(help_("remove this `;`: a block `{ ... }` ends without one"))
        return out
    if repair is not None and repair.kind == "replace":
        instead = " ".join(repair.texts)
        if found.type == "EQUAL" and repair.types == ("REL",) and instead == "==":
            out.append(help_("write `==` for an equality constraint (`=` gives a value: params, fields, `set`)"))
        elif found.type == "EQUAL" or (found.type == "REL" and instead == "="):
            out.append(help_(f"write `{instead}`" + (" to give a value (`==` is for equality constraints)" if instead == "=" else "")))
        elif found.type == "COLON":
            out.append(help_("write `=`: fields, params and rules take their value after `=`"))
        elif repair.types == ("VERSION",):
            out.append(help_(f"schema versions are written `{instead}`"))
        elif repair.spelling and len(repair.types) > 1:
            out.append(help_(f"write `{instead}` (separate words)"))
        elif repair.spelling:
            out.append(help_(f"did you mean `{instead}`?"))
        else:
            out.append(help_(f"write `{instead}` here"))
        return out
    # -- no repair: say what is likely wrong -----------------------------------------------------
    if len(before) >= 2 and before[-1].text == "*" and before[-2].text == "*":
        out.append(help_(_POWER))
    elif found.type == "EQUAL" and first is not None and first.type == "VAR":
        out.append(help_("a `var` takes no value: the solver finds it (declare a `param` to give a value)"))
    elif found.type == "EQUAL" and p.next_char in "<>":
        out.append(help_(f"write `{p.next_char}=`"))
    elif "SUBJECT" in p.expected and found.type in ("NAME", "NUMBER", "INT", "LPAR", "NEG_OP"):
        out.append(help_("constraints go inside a `subject to { ... }` block"))
    elif found.type == "$END" and p.unclosed is not None:
        closer = {"LBRACE": "}", "LPAR": ")", "LSQB": "]"}[p.unclosed.type]
        out.append(help_(f"a `{closer}` may be missing at the end"))
        out.append(note(f"this `{p.unclosed.text}` is not closed", _at(p.unclosed, file)))
    elif found.type in _ITEMS:
        out.append(help_("a `}` may be missing before this item"))
    elif "STRING" in p.expected and found.type in ("NAME", "QUOTE"):
        out.append(help_('write the path as a string in double quotes: "..."'))
    elif last is not None and last.type in ("INT", "NUMBER") and _bad_number(found, last, p.next_char):
        out.append(help_("numbers are written like `3`, `1.5`, `2e-3` (decimal, with `.`)"))
    return out


def _bad_number(found: Tok, number: Tok, next_char: str) -> bool:
    """`1e`, `0x10` (a name glued to a number) or `1,5` (a decimal comma)."""
    glued = found.type == "NAME" and number.end == found.start
    return glued or (found.type == "COMMA" and number.end == found.start and next_char.isdigit())
