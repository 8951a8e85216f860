"""The one way a user string reaches generated code: as a string literal of the target language.

A spec's file name (and the plan name taken from it) can hold any character: quotes, backslashes,
newlines, ``\"\"\"``, ``*/``, terminal escapes. Every backend passes such text through exactly one
function of this module, per target -- :func:`py_str`, :func:`rust_str` or :func:`cpp_str` (or
:func:`quote` by target name) -- and puts the result wherever the text appears: in code as a string
literal, and in comments and docstrings as that literal's contents (:func:`inline`). Each
function's output

* is printable ASCII only (no newline, carriage return, line or paragraph separator, no control
  or format character, no non-ASCII character) -- everything else is an escape sequence;
* is a single string literal that evaluates back to the text (round-trip tested);
* contains no ``*/``, no ``\"\"\"`` and never ends with a backslash, so it cannot close a block
  comment, a docstring or splice the next line into a C++ ``//`` comment.

:func:`safe_comment` is a second line of defence for whole comment lines built from fixed text,
identifiers and these literals.
"""

from __future__ import annotations

from collections.abc import Callable

# Characters kept verbatim inside a double-quoted literal (the same set for every target; `*` and
# `/` are handled apart so that `*/` never appears). No quote, backslash, `{`/`}` (Rust format
# strings), `?` (C++ trigraphs) or `$`.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,:=<>+()[]#")


def py_str(text: str) -> str:
    """A Python string literal (double-quoted, ASCII) for any text."""
    out = []
    prev = ""
    for ch in text:
        code = ord(ch)
        if ch in _PLAIN or (ch == "*") or (ch == "/" and prev != "*"):
            out.append(ch)
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
        prev = ch
    return '"' + "".join(out) + '"'


def rust_str(text: str) -> str:
    """A Rust string literal for any text: safe ASCII verbatim, everything else ``\\u{..}``."""
    out = []
    prev = ""
    for ch in text:
        if ch in _PLAIN or ch == "*" or (ch == "/" and prev != "*"):
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
        prev = ch
    return '"' + "".join(out) + '"'


def cpp_str(text: str) -> str:
    """A C++ string literal: safe ASCII verbatim, every other UTF-8 byte as a 3-digit octal escape
    (octal escapes stop after 3 digits, unlike ``\\x``, so the next character cannot extend them)."""
    out = []
    prev = 0
    for byte in text.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        if byte < 0x80 and (ch in _PLAIN or ch == "*" or (ch == "/" and prev != ord("*"))):
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
        prev = byte
    return '"' + "".join(out) + '"'


STRING_LITERAL: dict[str, Callable[[str], str]] = {"python": py_str, "rust": rust_str, "cpp": cpp_str}


def quote(target: str, text: str) -> str:
    """The string literal of ``text`` in ``target`` ("python", "rust" or "cpp")."""
    return STRING_LITERAL[target](text)


def inline(target: str, text: str) -> str:
    """The contents of :func:`quote`'s literal without the quotes, for prose in comments and
    docstrings (``The plan `gpu_fleet```): a name made of plain characters reads as itself, and
    anything else is escaped exactly as in the literal."""
    return quote(target, text)[1:-1]


def safe_comment(text: str) -> str:
    """Text that cannot end or escape a ``//`` or ``#`` comment line in any target.

    Only printable ASCII survives; anything else (newlines included) becomes ``<U+XXXX>``, as do a
    backslash at the end of the line (it would splice the next line into a C++ comment) and the
    ``/`` of ``*/``.
    """
    out = []
    for i, ch in enumerate(text):
        if not (" " <= ch <= "~"):
            out.append(f"<U+{ord(ch):04X}>")
        elif ch == "\\" and i == len(text) - 1:
            out.append("<U+005C>")
        elif ch == "/" and i > 0 and text[i - 1] == "*":
            out.append("<U+002F>")
        else:
            out.append(ch)
    return "".join(out)


__all__ = ["STRING_LITERAL", "cpp_str", "inline", "py_str", "quote", "rust_str", "safe_comment"]
