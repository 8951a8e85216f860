"""Every resource limit of the front end, in one table.

A spec is untrusted input: whoever compiles it must be able to bound the time and memory that
takes. Each limit below is checked where the quantity first becomes known -- file sizes before a
file is read, tokens, nesting and list lengths while the parser runs, family sizes before a family
is expanded, array sizes before an array is allocated -- and exceeding it is a located diagnostic
with the code given here, never a hang, a ``MemoryError`` or a traceback.

``docs/language.md`` ("Resource limits") lists every entry of :data:`LIMITS` with its value and
code; ``tests/language/test_limits.py`` checks both directions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from catopt_dsl.errors import ErrorCode

#: Bytes of one spec file (the root spec or an import).
MAX_SPEC_BYTES = 16 * 1024 * 1024
#: Bytes of one data file read by ``load()``.
MAX_DATA_BYTES = 256 * 1024 * 1024
#: Tokens of one spec file (comments and white space excluded).
MAX_TOKENS = 1_000_000
#: Brackets ``( [ {`` open at once.
MAX_BRACKET_DEPTH = 128
#: Depth of the syntax tree: a chain ``x + x + ... + x`` of N operators is N levels deep.
MAX_TREE_DEPTH = 256
#: Comma-separated entries in one bracket pair: array literal elements, call arguments, indices.
MAX_LIST_ELEMENTS = 100_000
#: Characters of one name (identifier).
MAX_NAME_CHARS = 128
#: Characters of one number literal (digits, sign of the exponent, ``.``, ``e``).
MAX_NUMBER_CHARS = 100
#: Characters of one string literal (``import`` and ``load`` paths).
MAX_STRING_CHARS = 4096
#: Members of one family (``[i in a..b]`` has ``b - a + 1``); bounds must also fit in int64.
MAX_FAMILY_MEMBERS = 100_000
#: LocalProblems, Morphisms and Limits of one plan after families are expanded.
MAX_OBJECTS = 200_000
#: The same, summed over the plans every PlanDelta yields (each delta yields a whole plan).
MAX_DELTA_OBJECTS = 20_000
#: Elements of one array: a param, var, schema field, loaded file or intermediate constant.
MAX_ARRAY_ELEMENTS = 10_000_000
#: Param and var elements summed over every object of a plan after expansion.
MAX_TOTAL_ELEMENTS = 50_000_000
#: Entries of one morphism field's coefficient matrix (field elements x the source's var elements).
MAX_COEFFICIENTS = 10_000_000
#: Element operations constant folding may spend on one compilation (a matrix product costs m*n*k).
MAX_FOLD_WORK = 2_000_000_000
#: Unknown names that get a did-you-mean suggestion (each search costs one pass over the scope).
MAX_SUGGESTIONS = 50
#: Diagnostics reported per run; later ones are dropped.
MAX_DIAGNOSTICS = 200
#: Schema versions travel as u32 on the wire.
MAX_SCHEMA_VERSION = 2**32 - 1

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Limit:
    """One row of the table in docs/language.md."""

    name: str
    value: int
    code: ErrorCode | None  # None: not a diagnostic (later diagnostics are dropped silently)
    what: str


LIMITS: tuple[Limit, ...] = (
    Limit("MAX_SPEC_BYTES", MAX_SPEC_BYTES, ErrorCode.UNREADABLE, "bytes of one spec file (root or import)"),
    Limit("MAX_DATA_BYTES", MAX_DATA_BYTES, ErrorCode.LOAD_UNREADABLE, "bytes of one `load()` data file"),
    Limit("MAX_TOKENS", MAX_TOKENS, ErrorCode.LIMIT, "tokens of one spec file"),
    Limit("MAX_BRACKET_DEPTH", MAX_BRACKET_DEPTH, ErrorCode.TOO_DEEP, "brackets open at once"),
    Limit("MAX_TREE_DEPTH", MAX_TREE_DEPTH, ErrorCode.TOO_DEEP, "levels of one expression (operators in a chain)"),
    Limit("MAX_LIST_ELEMENTS", MAX_LIST_ELEMENTS, ErrorCode.LIMIT, "entries in one bracket pair (array literal, call, index)"),
    Limit("MAX_NAME_CHARS", MAX_NAME_CHARS, ErrorCode.LIMIT, "characters of one name"),
    Limit("MAX_NUMBER_CHARS", MAX_NUMBER_CHARS, ErrorCode.LIMIT, "characters of one number literal"),
    Limit("MAX_STRING_CHARS", MAX_STRING_CHARS, ErrorCode.LIMIT, "characters of one string literal"),
    Limit("MAX_FAMILY_MEMBERS", MAX_FAMILY_MEMBERS, ErrorCode.LIMIT, "members of one family (bounds within int64)"),
    Limit("MAX_OBJECTS", MAX_OBJECTS, ErrorCode.LIMIT, "objects, morphisms and limits of one plan after expansion"),
    Limit("MAX_DELTA_OBJECTS", MAX_DELTA_OBJECTS, ErrorCode.LIMIT, "the same, summed over the plans that PlanDeltas yield"),
    Limit("MAX_ARRAY_ELEMENTS", MAX_ARRAY_ELEMENTS, ErrorCode.LIMIT, "elements of one param, var, field, loaded file or constant"),
    Limit("MAX_TOTAL_ELEMENTS", MAX_TOTAL_ELEMENTS, ErrorCode.LIMIT, "param and var elements of all objects of a plan"),
    Limit("MAX_COEFFICIENTS", MAX_COEFFICIENTS, ErrorCode.LIMIT, "entries of one morphism field's coefficient matrix"),
    Limit("MAX_FOLD_WORK", MAX_FOLD_WORK, ErrorCode.LIMIT, "element operations of constant folding per compilation"),
    Limit("MAX_SUGGESTIONS", MAX_SUGGESTIONS, None, "unknown names that get a did-you-mean suggestion"),
    Limit("MAX_DIAGNOSTICS", MAX_DIAGNOSTICS, None, "diagnostics reported per run"),
    Limit("MAX_SCHEMA_VERSION", MAX_SCHEMA_VERSION, ErrorCode.LIMIT, "largest schema version (u32 on the wire)"),
)


def elements(shape: Iterable[int]) -> int:
    """The number of elements of ``shape`` as an exact Python int (no int64 overflow)."""
    n = 1
    for d in shape:
        n *= int(d)
    return n
