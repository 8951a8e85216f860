"""AST expression -> canonical source text: for the formatter, for messages and for IR text.

Spacing is normalised (`a + b`, `f(x, y)`, `x[0, 1:3]`) and parentheses are the fewest that keep
the tree: each node is printed with its binding strength, and an operand binding more loosely than
its position needs is wrapped. The printed text parses back to the same tree; the formatter
checks that on every file it writes.
"""

from __future__ import annotations

from catopt_dsl.syntax import ast

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2}
_UNARY = 3  # `-x`, and a negative literal
_POSTFIX = 4  # `x[i]`, `x.f`, `x'`
_ATOM = 5


def unparse(e: object, parent_prec: int = 0, literals: bool = False) -> str:
    """``e`` as source text. ``literals``: numbers as the user wrote them (`1e-3`), not as their
    value prints (`0.001`); the formatter asks for that, messages and the IR do not."""
    text, prec = _unparse(e, literals)
    return f"({text})" if prec < parent_prec else text


def _unparse(e: object, literals: bool) -> tuple[str, int]:
    if isinstance(e, ast.Number):
        text = e.text if literals and e.text else (str(e.value) if e.is_int else repr(e.value))
        return text, (_UNARY if text.startswith("-") else _ATOM)
    if isinstance(e, ast.Bool):
        return ("true" if e.value else "false"), _ATOM
    if isinstance(e, ast.Name):
        return e.name, _ATOM
    if isinstance(e, ast.Call):
        return f"{e.func}({', '.join(unparse(a, 0, literals) for a in e.args)})", _ATOM
    if isinstance(e, ast.Load):
        return f"load({string_literal(e.path)})", _ATOM
    if isinstance(e, ast.ArrayLit):
        return "[" + ", ".join(unparse(x, 0, literals) for x in e.elements) + "]", _ATOM
    if isinstance(e, ast.Star):
        return "*", _ATOM
    if isinstance(e, ast.BinOp):
        p = _PREC[e.op]
        # Left-associative: the right operand needs parentheses at the same strength (`a - (b - c)`).
        return f"{unparse(e.left, p, literals)} {e.op} {unparse(e.right, p + 1, literals)}", p
    if isinstance(e, ast.UnaryOp):
        # `-(-x)`, not `--x`: a sign on a sign reads as a typo.
        signed = isinstance(e.operand, ast.UnaryOp) or (isinstance(e.operand, ast.Number) and e.operand.value < 0)
        return f"{e.op}{unparse(e.operand, _UNARY + 1 if signed else _UNARY, literals)}", _UNARY
    if isinstance(e, ast.Index):
        subs = ", ".join(_sub(s, literals) for s in e.subscripts)
        return f"{unparse(e.base, _POSTFIX, literals)}[{subs}]", _POSTFIX
    if isinstance(e, ast.Attr):
        # `(3).x`: written `3.x` it would lex as the number `3.` and a name.
        base = unparse(e.base, _ATOM + 1 if isinstance(e.base, ast.Number) else _POSTFIX, literals)
        return f"{base}.{e.name}", _POSTFIX
    if isinstance(e, ast.Transpose):
        return f"{unparse(e.operand, _POSTFIX, literals)}'", _POSTFIX
    raise TypeError(f"not an expression: {type(e).__name__}")


def _sub(s: object, literals: bool) -> str:
    if isinstance(s, ast.Slice):
        parts = [unparse(p, 0, literals) if p is not None else "" for p in (s.start, s.stop)]
        if s.step is not None:
            parts.append(unparse(s.step, 0, literals))
        return ":".join(parts)
    return unparse(s, 0, literals)


def string_literal(value: str) -> str:
    """A string as the lexer reads it back: in double quotes, `\\` and `"` escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
