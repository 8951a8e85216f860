"""AST expression -> canonical source text (for messages and generated comments)."""

from __future__ import annotations

from catopt_dsl.syntax import ast

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2}


def unparse(e: object, parent_prec: int = 0) -> str:
    if isinstance(e, ast.Number):
        return repr(e.value) if not e.is_int else str(e.value)
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Name):
        return e.name
    if isinstance(e, ast.Call):
        return f"{e.func}({', '.join(unparse(a) for a in e.args)})"
    if isinstance(e, ast.Load):
        escaped = e.path.replace("\\", "\\\\").replace('"', '\\"')
        return f'load("{escaped}")'
    if isinstance(e, ast.BinOp):
        p = _PREC[e.op]
        text = f"{unparse(e.left, p)} {e.op} {unparse(e.right, p + 1)}"
        return f"({text})" if p < parent_prec else text
    if isinstance(e, ast.UnaryOp):
        return f"{e.op}{unparse(e.operand, 3)}"
    if isinstance(e, ast.Index):
        return f"{unparse(e.base, 4)}[{', '.join(_sub(s) for s in e.subscripts)}]"
    if isinstance(e, ast.Attr):
        return f"{unparse(e.base, 4)}.{e.name}"
    if isinstance(e, ast.Transpose):
        return f"{unparse(e.operand, 4)}'"
    if isinstance(e, ast.ArrayLit):
        return "[" + ", ".join(unparse(x) for x in e.elements) + "]"
    if isinstance(e, ast.Star):
        return "*"
    raise TypeError(f"not an expression: {type(e).__name__}")


def _sub(s: object) -> str:
    if isinstance(s, ast.Slice):
        parts = [unparse(s.start) if s.start is not None else "", unparse(s.stop) if s.stop is not None else ""]
        if s.step is not None:
            parts.append(unparse(s.step))
        return ":".join(parts)
    return unparse(s)
