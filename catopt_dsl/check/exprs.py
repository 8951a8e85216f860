"""Expression checking: shapes, dtypes, constant folding and convexity (DCP).

Language rules for expressions (copied to docs/language.md):

**Values.** Every expression has a dtype (``float``, ``int`` or ``bool``), a shape (``()`` for a
scalar, ``(n,)`` for a vector, ``(m, n)`` for a matrix), a curvature and a sign. Literals, params,
family indices, ``load(...)`` and anything computed only from those are *constants* and are folded
to a value at compile time. Variables (always ``float``; ``var x: int`` is E0203 because integer
variables are not convex) make an expression non-constant.

**dtypes.** ``int`` promotes to ``float`` in arithmetic; ``int op int`` stays ``int`` for ``+ - *``
and ``@`` (so ``i + 1`` is a valid index), ``/`` always gives ``float``. ``bool`` values exist only
as values of ``bool`` params; using one in arithmetic or as an atom argument is E0203.

**Broadcasting.** A scalar combines with any shape; otherwise the operands of ``+``, ``-``,
``multiply``, ``maximum`` and ``minimum`` (and the two sides of a constraint) must have equal shapes
(E0201). There is no numpy-style stretching of size-1 dimensions.

**Products.** ``a * b`` needs a scalar on at least one side (E0201 otherwise): ``*`` never means an
elementwise product of two arrays, so ``A * x`` written for a matrix product is caught instead of
silently multiplying entries. Use ``multiply(a, b)`` for elementwise products and ``@`` for matrix
products. ``@``: ``(n,)@(n,) -> ()``, ``(m,n)@(n,) -> (m,)``, ``(n,)@(n,k) -> (k,)``,
``(m,n)@(n,k) -> (m,k)``; anything else (including scalars) is E0202. ``a / d`` needs ``d`` to be a
constant (E0107), scalar (E0207), nonzero (E0203) divisor.

**Transpose.** ``A'`` (or ``transpose(A)``) swaps the axes of a matrix; of a vector or scalar it is
the identity.

**Indexing.** ``x[i]``, ``A[i, j]``, ``A[:, j]``, ``x[a:b]``, ``x[a:b:s]``: one subscript per
dimension at most (fewer leave the trailing dimensions whole), each an int (negative counts from
the end, numpy style) or a slice with positive step. Indices and slice bounds must be constant
ints (E0107 for a variable, E0203 for a float, E0207 for a non-scalar); an index outside the
dimension, a slice bound outside ``-n..n``, an empty slice or too many subscripts is E0204. Family
indices such as ``i`` are constant ints, so ``p[i]`` and ``load("d.csv")[i]`` work in families.

**Array literals.** ``[a, b, c]`` stacks equally shaped elements along a new first axis (E0201
when shapes differ); nested literals build matrices. Elements may be non-constant (``[x[0], 2*y]``).

**Convexity.** Curvatures are constant < affine < convex / concave < unknown; the atom table
(:mod:`catopt_dsl.check.atoms`) and the DCP composition rule decide each node's curvature. ``+``
is affine and increasing in both sides, ``-`` decreasing in its right side, negation flips
curvature, ``c * e``, ``e / c``, ``C @ e`` and ``e @ C`` are affine and increasing (decreasing) in
``e`` when the constant is nonnegative (nonpositive) and not monotone otherwise. A product of two
non-constant expressions has unknown curvature. ``minimize`` needs a convex scalar objective,
``maximize`` a concave one (E0301; E0207 when not scalar); constraints must be ``convex <= concave``,
``concave >= convex`` or ``affine == affine`` (E0302); morphism fields and functor rules must be
affine (E0303). When a rule is broken the diagnostic names the *smallest* sub-expression at fault,
e.g. "`sqrt(x)` is concave, but `minimize` needs a convex objective".

**Names.** An unknown name is E0101 (with a did-you-mean), an unknown function E0105, a wrong
number of arguments E0106, a variable where a constant is required (param values, indices, the
matrix of ``quad_form``, ``huber``'s ``M``, a divisor) E0107. ``a.b`` and ``*`` are only legal in
Limit constraints (E0107 elsewhere).

**Params.** ``param p: T[dims] = value;``: the value must be constant; its shape must equal the
declared one (E0205 for literals, E0603 when the value comes from ``load``), except that a scalar
value fills every entry (``param lo: float[24] = 0;``). An ``int`` param needs integral values and a
``bool`` param bool values (E0203). A NaN or Inf value is E0604 (also for constants that overflow,
e.g. ``exp(1000)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from catopt_dsl import limits
from catopt_dsl.check.atoms import (
    ATOMS,
    AtomError,
    Curvature,
    Mono,
    Sign,
    apply_atom,
    apply_binary,
    arg_requirement,
    broadcast,
    compose,
    fmt_shape,
    mono_scale,
    satisfies,
    sign_add,
    sign_join,
    sign_mul,
    sign_neg,
    sign_of_range,
    sign_of_value,
)
from catopt_dsl.check.data import load_data
from catopt_dsl.check.scope import ExprContext, IndexSymbol, ParamSymbol, Scope, VarSymbol
from catopt_dsl.check.suggest import suggest
from catopt_dsl.diagnostics import DiagnosticSink, Note, help_, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast

__all__ = [
    "Curvature",
    "Sign",
    "ExprType",
    "TypeMap",
    "Typer",
    "make_checker",
    "type_expr",
    "eval_const",
    "check_param",
    "check_objective",
    "check_constraint",
    "check_affine",
    "render_expr",
    "NP_DTYPES",
]

NP_DTYPES: dict[str, type] = {"float": np.float64, "int": np.int64, "bool": np.bool_}

_INT_MAX = 2**63 - 1

@dataclass(frozen=True, eq=False)
class ExprType:
    """What the checker knows about an expression.

    ``const`` holds the folded value when the expression is constant and its value is known; it is
    ``None`` for non-constant expressions and for constants whose value failed to evaluate (that
    failure was already reported).
    """

    dtype: str
    shape: tuple[int, ...]
    curvature: Curvature
    sign: Sign
    const: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.curvature is Curvature.CONSTANT


@dataclass(frozen=True)
class _Rule:
    """How a node composes its children, kept for blaming DCP failures on the smallest culprit."""

    intrinsic: Curvature
    children: tuple[tuple[ast.Expr, Mono], ...]
    label: str  # "`square`", "negation", "`*`", ...
    reason: str | None = None  # why `intrinsic` is UNKNOWN, when it is


# ---------------------------------------------------------------------------------------------
# Rendering expressions back to text (for messages)
# ---------------------------------------------------------------------------------------------

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2}


def _num_text(v: float | int, is_int: bool) -> str:
    return str(int(v)) if is_int else repr(float(v))


def render_expr(e: ast.Expr | ast.Slice | ast.Star) -> str:
    """The expression as source text (normalised spacing, minimal parentheses)."""
    return _render(e)[0]


def _render(e: object) -> tuple[str, int]:
    if isinstance(e, ast.Number):
        return _num_text(e.value, e.is_int), (3 if e.value < 0 else 5)
    if isinstance(e, ast.Bool):
        return ("true" if e.value else "false"), 5
    if isinstance(e, ast.Name):
        return e.name, 5
    if isinstance(e, ast.Load):
        escaped = e.path.replace("\\", "\\\\").replace('"', '\\"')
        return f'load("{escaped}")', 5
    if isinstance(e, ast.Call):
        return f"{e.func}({', '.join(render_expr(a) for a in e.args)})", 5
    if isinstance(e, ast.ArrayLit):
        return "[" + ", ".join(render_expr(a) for a in e.elements) + "]", 5
    if isinstance(e, ast.Star):
        return "*", 5
    if isinstance(e, ast.Slice):
        parts = ["" if p is None else render_expr(p) for p in (e.start, e.stop, e.step)]
        return (":".join(parts) if e.step is not None else ":".join(parts[:2])), 0
    if isinstance(e, ast.BinOp):
        p = _PREC.get(e.op, 1)
        lt, lp = _render(e.left)
        rt, rp = _render(e.right)
        if lp < p:
            lt = f"({lt})"
        if rp <= p:
            rt = f"({rt})"
        return f"{lt} {e.op} {rt}", p
    if isinstance(e, ast.UnaryOp):
        t, p = _render(e.operand)
        if p < 3:
            t = f"({t})"
        return f"{e.op}{t}", 3
    if isinstance(e, ast.Index):
        t, p = _render(e.base)
        if p < 4:
            t = f"({t})"
        return f"{t}[{', '.join(render_expr(s) for s in e.subscripts)}]", 4
    if isinstance(e, ast.Attr):
        t, p = _render(e.base)
        if p < 4:
            t = f"({t})"
        return f"{t}.{e.name}", 4
    if isinstance(e, ast.Transpose):
        t, p = _render(e.operand)
        if p < 4:
            t = f"({t})"
        return f"{t}'", 4
    return "?", 5


def _short(e: ast.Expr, limit: int = 72) -> str:
    text = render_expr(e)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------------------------


class TypeMap:
    """What typing learned about the expressions of one scope (an object or family member, a
    shared block, a morphism), keyed by node identity: each node's :class:`ExprType` (shape,
    dtype, curvature, folded value), normalised index keys and call options. Lowering reads it
    instead of typing the expressions again.
    """

    def __init__(
        self,
        types: dict[int, ExprType | None],
        index_keys: dict[int, tuple[int | tuple[int, int, int], ...]],
        call_options: dict[int, tuple[tuple[str, object], ...]],
        keep: list[object],
    ) -> None:
        self._types = types
        self._index_keys = index_keys
        self._call_options = call_options
        self._keep = keep  # the typed nodes stay alive, so their ids stay unique

    def type(self, e: object) -> ExprType:
        t = self._types.get(id(e))
        if t is None:
            raise KeyError(f"no type recorded for `{render_expr(e)}`: it was not checked in this scope")  # type: ignore[arg-type]
        return t

    def index_key(self, e: object) -> tuple[int | tuple[int, int, int], ...]:
        return self._index_keys[id(e)]

    def call_options(self, e: object) -> tuple[tuple[str, object], ...]:
        return self._call_options.get(id(e), ())


class _Checker:
    """Types one or more expressions against a scope; memoises per node (by identity)."""

    def __init__(self, scope: Scope, ctx: ExprContext, sink: DiagnosticSink) -> None:
        self.scope = scope
        self.ctx = ctx
        self.sink = sink
        self.memo: dict[int, ExprType | None] = {}
        self.rules: dict[int, _Rule] = {}
        self.index_keys: dict[int, tuple[int | tuple[int, int, int], ...]] = {}
        self.call_options: dict[int, tuple[tuple[str, object], ...]] = {}
        self._keep: list[object] = []  # keeps memoised nodes alive so ids stay unique

    def type_map(self) -> TypeMap:
        """Everything typed so far, for lowering."""
        return TypeMap(self.memo, self.index_keys, self.call_options, self._keep)

    # -- helpers ---------------------------------------------------------------------------------
    def type(self, e: ast.Expr) -> ExprType | None:
        key = id(e)
        if key in self.memo:
            return self.memo[key]
        self._keep.append(e)
        t = self._type(e)
        self.memo[key] = t
        return t

    def _first_var(self, e: object) -> ast.Name | None:
        for n in _walk(e):
            if isinstance(n, ast.Name) and isinstance(self.scope.lookup(n.name), VarSymbol):
                return n
        return None

    def require_const(self, e: ast.Expr, t: ExprType, role: str) -> bool:
        """Report E0107 when ``t`` is not constant. Returns whether it is constant."""
        if t.is_constant:
            return True
        var = self._first_var(e)
        if var is not None:
            self.sink.error(
                ErrorCode.WRONG_KIND,
                f"`{var.name}` is a variable, but {role} must be constant",
                var.span,
                help_("use a param (or a literal) here"),
            )
        else:  # pragma: no cover - non-constant without a variable cannot happen
            self.sink.error(ErrorCode.WRONG_KIND, f"{role} must be constant", e.span)
        return False

    def _no_bool(self, e: ast.Expr, t: ExprType, what: str) -> bool:
        if t.dtype == "bool":
            self.sink.error(
                ErrorCode.TYPE,
                f"`{_short(e)}` is a bool, but {what} needs numbers",
                e.span,
                note("bool values can only be the values of bool params"),
            )
            return False
        return True

    def _size_ok(self, e: ast.Expr, shape: Sequence[int]) -> bool:
        """Refuse an expression with more than MAX_ARRAY_ELEMENTS elements before anything of that
        size is built (broadcasting and array literals can multiply sizes: `a[n, 1] + b[1, n]`)."""
        n = limits.elements(shape)
        if n <= limits.MAX_ARRAY_ELEMENTS:
            return True
        self.sink.error(
            ErrorCode.LIMIT,
            f"`{_short(e)}` has shape {fmt_shape(tuple(shape))}: {n:,} elements, more than the limit of {limits.MAX_ARRAY_ELEMENTS:,}",
            e.span,
        )
        return False

    def _charge(self, e: ast.Expr, work: int) -> bool:
        """Spend ``work`` element operations of constant folding from the compilation's budget
        (MAX_FOLD_WORK): bounded arrays alone do not bound a chain of 255 matrix products."""
        if self.ctx.charge(work):
            return True
        self.sink.error(
            ErrorCode.LIMIT,
            f"folding `{_short(e)}` would pass the limit of {limits.MAX_FOLD_WORK:,} element operations "
            "that constant folding may spend on one compilation",
            e.span,
            help_("precompute large constants and load() them from a .npy file"),
        )
        return False

    def _finish_const(self, e: ast.Expr, value: np.ndarray, dtype: str) -> np.ndarray | None:
        """Normalise a folded value; report E0604 when folding produced NaN/Inf."""
        arr = np.asarray(value)
        if dtype == "float":
            arr = arr.astype(np.float64, copy=False)
            if not np.all(np.isfinite(arr)):
                bad = "NaN" if np.any(np.isnan(arr)) else "Inf"
                self.sink.error(
                    ErrorCode.LOAD_NONFINITE,
                    f"`{_short(e)}` evaluates to {bad}",
                    e.span,
                    note("constants are folded at compile time and must be finite"),
                )
                return None
        elif dtype == "int":
            arr = arr.astype(np.int64, copy=False)
        else:
            arr = arr.astype(np.bool_, copy=False)
        arr = np.array(arr, copy=True)
        arr.setflags(write=False)
        return arr

    # -- dispatch --------------------------------------------------------------------------------
    def _type(self, e: ast.Expr) -> ExprType | None:
        if isinstance(e, ast.Number):
            return self._number(e)
        if isinstance(e, ast.Bool):
            return ExprType("bool", (), Curvature.CONSTANT, Sign.UNKNOWN, self._ro(np.array(e.value)))
        if isinstance(e, ast.Name):
            return self._name(e)
        if isinstance(e, ast.Load):
            arr = load_data(e, self.ctx, self.sink)
            if arr is None:
                return None
            dtype = {"b": "bool", "i": "int"}.get(arr.dtype.kind, "float")
            return ExprType(dtype, tuple(arr.shape), Curvature.CONSTANT, sign_of_value(arr), arr)
        if isinstance(e, ast.UnaryOp):
            return self._unary(e)
        if isinstance(e, ast.BinOp):
            return self._binop(e)
        if isinstance(e, ast.Transpose):
            return self._transpose(e)
        if isinstance(e, ast.Index):
            return self._index(e)
        if isinstance(e, ast.ArrayLit):
            return self._array(e)
        if isinstance(e, ast.Call):
            return self._call(e)
        if isinstance(e, ast.Attr):
            self.sink.error(
                ErrorCode.WRONG_KIND,
                "`.` access is only allowed in Limit constraints",
                e.span,
                help_(f"inside an object, refer to `{e.name}` directly"),
            )
            return None
        if isinstance(e, ast.Star):
            self.sink.error(ErrorCode.WRONG_KIND, "`*` (every member) is only allowed in Limit constraints", e.span)
            return None
        if isinstance(e, ast.Slice):
            self.sink.error(ErrorCode.SYNTAX, "a slice is only allowed inside `[...]`", e.span)
            return None
        raise TypeError(f"not an expression node: {type(e).__name__}")  # pragma: no cover

    @staticmethod
    def _ro(arr: np.ndarray) -> np.ndarray:
        arr.setflags(write=False)
        return arr

    # -- leaves ----------------------------------------------------------------------------------
    def _number(self, e: ast.Number) -> ExprType | None:
        if e.is_int:
            v = int(e.value)
            if abs(v) > _INT_MAX:
                self.sink.error(ErrorCode.TYPE, f"integer literal `{v}` does not fit in 64 bits", e.span)
                return None
            arr = self._ro(np.array(v, dtype=np.int64))
            return ExprType("int", (), Curvature.CONSTANT, sign_of_range(v, v), arr)
        f = float(e.value)
        if not np.isfinite(f):
            self.sink.error(ErrorCode.LOAD_NONFINITE, "number literal is too large (it overflows to Inf)", e.span)
            return None
        arr = self._ro(np.array(f, dtype=np.float64))
        return ExprType("float", (), Curvature.CONSTANT, sign_of_range(f, f), arr)

    def _name(self, e: ast.Name) -> ExprType | None:
        sym = self.scope.lookup(e.name)
        if sym is None:
            notes: list[Note] = []
            if e.name in ATOMS:
                notes.append(help_(f"`{e.name}` is a function; call it as `{e.name}(...)`"))
            else:
                # The budget is taken before listing the scope: listing it is the expensive part.
                close = suggest(e.name, self.scope.names()) if self.sink.take_suggestion() else None
                if close:
                    notes.append(help_(f"did you mean `{close}`?"))
            self.sink.error(ErrorCode.UNKNOWN_NAME, f"unknown name `{e.name}`", e.span, *notes)
            return None
        if isinstance(sym, ParamSymbol):
            return ExprType(sym.dtype, tuple(sym.shape), Curvature.CONSTANT, sign_of_value(sym.value), sym.value)
        if isinstance(sym, VarSymbol):
            return ExprType("float", tuple(sym.shape), Curvature.AFFINE, Sign.UNKNOWN, None)
        if isinstance(sym, IndexSymbol):
            arr = self._ro(np.array(int(sym.value), dtype=np.int64))
            return ExprType("int", (), Curvature.CONSTANT, sign_of_value(arr), arr)
        raise TypeError(f"unknown symbol kind {type(sym).__name__}")  # pragma: no cover

    # -- operators -------------------------------------------------------------------------------
    def _unary(self, e: ast.UnaryOp) -> ExprType | None:
        t = self.type(e.operand)
        if t is None or not self._no_bool(e.operand, t, f"unary `{e.op}`"):
            return None
        if e.op == "+":
            self.rules[id(e)] = _Rule(Curvature.AFFINE, ((e.operand, Mono.INCREASING),), "unary `+`")
            return t
        const = None
        if t.const is not None:
            if not self._charge(e, limits.elements(t.shape)):
                return None
            const = self._finish_const(e, apply_binary("-", np.zeros((), t.const.dtype), t.const), t.dtype)
        self.rules[id(e)] = _Rule(Curvature.AFFINE, ((e.operand, Mono.DECREASING),), "negation")
        curv = compose(Curvature.AFFINE, [t.curvature], [Mono.DECREASING])
        return ExprType(t.dtype, t.shape, curv, sign_neg(t.sign), const)

    def _binop(self, e: ast.BinOp) -> ExprType | None:
        lt = self.type(e.left)
        rt = self.type(e.right)
        if lt is None or rt is None:
            return None
        if not (self._no_bool(e.left, lt, f"`{e.op}`") and self._no_bool(e.right, rt, f"`{e.op}`")):
            return None
        op = e.op
        both_int = lt.dtype == "int" and rt.dtype == "int"
        dtype = "int" if both_int and op != "/" else "float"
        if op in ("+", "-"):
            try:
                shape = broadcast([lt.shape, rt.shape])
            except AtomError:
                verb = "add" if op == "+" else "subtract"
                self.sink.error(
                    ErrorCode.SHAPE,
                    f"cannot {verb} shapes {fmt_shape(lt.shape)} and {fmt_shape(rt.shape)}",
                    e.span,
                    note("elementwise operations need equal shapes, or a scalar on one side"),
                )
                return None
            rmono = Mono.INCREASING if op == "+" else Mono.DECREASING
            rule = _Rule(Curvature.AFFINE, ((e.left, Mono.INCREASING), (e.right, rmono)), f"`{op}`")
            sign = sign_add(lt.sign, rt.sign if op == "+" else sign_neg(rt.sign))
        elif op == "*":
            if lt.shape != () and rt.shape != ():
                self.sink.error(
                    ErrorCode.SHAPE,
                    f"`*` needs a scalar on one side, but got {fmt_shape(lt.shape)} and {fmt_shape(rt.shape)}",
                    e.span,
                    help_("use `multiply(a, b)` for an elementwise product, or `a @ b` for a matrix product"),
                )
                return None
            shape = lt.shape or rt.shape
            rule = self._product_rule(e, lt, rt, "`*`")
            sign = sign_mul(lt.sign, rt.sign)
        elif op == "/":
            if rt.shape != ():
                self.sink.error(
                    ErrorCode.NOT_SCALAR,
                    f"the divisor of `/` must be a scalar, but `{_short(e.right)}` has shape {fmt_shape(rt.shape)}",
                    e.right.span,
                )
                return None
            if not self.require_const(e.right, rt, "the divisor of `/`"):
                return None
            if rt.const is None:
                return None
            if float(rt.const) == 0.0:
                self.sink.error(ErrorCode.TYPE, f"division by zero: `{_short(e.right)}` is 0", e.right.span)
                return None
            shape = lt.shape
            rule = _Rule(Curvature.AFFINE, ((e.left, mono_scale(rt.sign)), (e.right, Mono.INCREASING)), "`/`")
            sign = sign_mul(lt.sign, rt.sign)
        elif op == "@":
            shape_or_none = _matmul_shape(lt.shape, rt.shape)
            if shape_or_none is None:
                notes = [note("`@` takes (n,)@(n,), (m,n)@(n,), (n,)@(n,k) or (m,n)@(n,k)")]
                if lt.shape == () or rt.shape == ():
                    notes.append(help_("use `*` to scale by a scalar"))
                self.sink.error(
                    ErrorCode.MATMUL_SHAPE,
                    f"cannot multiply shapes {fmt_shape(lt.shape)} @ {fmt_shape(rt.shape)}",
                    e.span,
                    *notes,
                )
                return None
            shape = shape_or_none
            rule = self._product_rule(e, lt, rt, "`@`")
            sign = sign_mul(lt.sign, rt.sign)
        else:  # pragma: no cover - the grammar admits no other operator
            raise ValueError(f"unknown operator {op}")
        if not self._size_ok(e, shape):
            return None
        self.rules[id(e)] = rule
        curv = compose(rule.intrinsic, [lt.curvature, rt.curvature], [m for _, m in rule.children])
        const = None
        if lt.const is not None and rt.const is not None:
            if op == "@":
                inner = lt.shape[-1] if lt.shape else 1
                work = limits.elements(shape) * inner
            else:
                work = limits.elements(shape)
            if not self._charge(e, work):
                return None
            value = apply_binary(op, lt.const, rt.const)
            if dtype == "int" and op in ("*", "@"):
                # int64 wraps silently; redo the product in float to catch overflow.
                big = apply_binary(op, lt.const.astype(np.float64), rt.const.astype(np.float64))
                if np.any(np.abs(big) > _INT_MAX):
                    self.sink.error(ErrorCode.TYPE, f"integer overflow in `{_short(e)}`", e.span)
                    return None
            const = self._finish_const(e, value, dtype)
            if const is None:
                return None
            sign = sign_of_value(const)
        return ExprType(dtype, shape, curv, sign, const)

    def _product_rule(self, e: ast.BinOp, lt: ExprType, rt: ExprType, label: str) -> _Rule:
        if lt.is_constant:
            return _Rule(Curvature.AFFINE, ((e.left, Mono.INCREASING), (e.right, mono_scale(lt.sign))), label)
        if rt.is_constant:
            return _Rule(Curvature.AFFINE, ((e.left, mono_scale(rt.sign)), (e.right, Mono.INCREASING)), label)
        return _Rule(
            Curvature.UNKNOWN,
            ((e.left, Mono.NONMONOTONE), (e.right, Mono.NONMONOTONE)),
            label,
            "a product is convex only when one of its factors is constant",
        )

    def _transpose(self, e: ast.Transpose) -> ExprType | None:
        t = self.type(e.operand)
        if t is None:
            return None
        self.rules[id(e)] = _Rule(Curvature.AFFINE, ((e.operand, Mono.INCREASING),), "transpose")
        shape = tuple(reversed(t.shape))
        const = None
        if t.const is not None:
            const = self._ro(np.array(np.transpose(t.const)))
        curv = compose(Curvature.AFFINE, [t.curvature], [Mono.INCREASING])
        return ExprType(t.dtype, shape, curv, t.sign, const)

    # -- indexing --------------------------------------------------------------------------------
    def _const_int(self, e: ast.Expr, role: str) -> int | None:
        t = self.type(e)
        if t is None:
            return None
        if not self.require_const(e, t, role):
            return None
        if t.shape != ():
            self.sink.error(
                ErrorCode.NOT_SCALAR,
                f"{role} must be a single int, but `{_short(e)}` has shape {fmt_shape(t.shape)}",
                e.span,
            )
            return None
        if t.dtype != "int":
            self.sink.error(ErrorCode.TYPE, f"{role} must be an int, but `{_short(e)}` is a {t.dtype}", e.span)
            return None
        if t.const is None:
            return None
        return int(t.const)

    def _index(self, e: ast.Index) -> ExprType | None:
        bt = self.type(e.base)
        if bt is None:
            return None
        nd = len(bt.shape)
        if len(e.subscripts) > nd:
            extra = e.subscripts[nd]
            dims = f"{nd} dimension{'s' if nd != 1 else ''}"
            self.sink.error(
                ErrorCode.INDEX,
                f"too many indices: `{_short(e.base)}` has shape {fmt_shape(bt.shape)} ({dims})",
                extra.span,
            )
            return None
        key: list[int | tuple[int, int, int]] = []
        shape: list[int] = []
        ok = True
        for dim, sub in enumerate(e.subscripts):
            n = bt.shape[dim]
            if isinstance(sub, ast.Star):
                self.sink.error(
                    ErrorCode.WRONG_KIND, "`[*]` (every member) is only allowed in Limit constraints", sub.span
                )
                ok = False
                continue
            if isinstance(sub, ast.Slice):
                triple = self._slice(sub, n, dim)
                if triple is None:
                    ok = False
                    continue
                key.append(triple)
                shape.append(len(range(*triple)))
                continue
            v = self._const_int(sub, "an index")
            if v is None:
                ok = False
                continue
            if not -n <= v < n:
                self.sink.error(
                    ErrorCode.INDEX,
                    f"index {v} is out of range for dimension {dim} of size {n}",
                    sub.span,
                    note(f"`{_short(e.base)}` has shape {fmt_shape(bt.shape)}; valid indices are {-n}..{n - 1}"),
                )
                ok = False
                continue
            key.append(v % n)
        if not ok:
            return None
        for dim in range(len(e.subscripts), nd):
            key.append((0, bt.shape[dim], 1))
            shape.append(bt.shape[dim])
        tkey = tuple(key)
        self.index_keys[id(e)] = tkey
        self.rules[id(e)] = _Rule(Curvature.AFFINE, ((e.base, Mono.INCREASING),), "indexing")
        const = None
        sign = bt.sign
        if bt.const is not None:
            np_key = tuple(k if isinstance(k, int) else slice(*k) for k in tkey)
            const = self._ro(np.array(bt.const[np_key]))
            sign = sign_of_value(const) if bt.dtype != "bool" else Sign.UNKNOWN
        curv = compose(Curvature.AFFINE, [bt.curvature], [Mono.INCREASING])
        return ExprType(bt.dtype, tuple(shape), curv, sign, const)

    def _slice(self, s: ast.Slice, n: int, dim: int) -> tuple[int, int, int] | None:
        parts: list[int | None] = []
        for part in (s.start, s.stop, s.step):
            if part is None:
                parts.append(None)
                continue
            v = self._const_int(part, "a slice bound")
            if v is None:
                return None
            parts.append(v)
        start, stop, step = parts
        if step is not None and step <= 0:
            assert s.step is not None
            self.sink.error(ErrorCode.INDEX, f"slice step must be positive, got {step}", s.step.span)
            return None
        for v, node in ((start, s.start), (stop, s.stop)):
            if v is not None and not -n <= v <= n:
                assert node is not None
                self.sink.error(
                    ErrorCode.INDEX,
                    f"slice bound {v} is out of range for dimension {dim} of size {n}",
                    node.span,
                    note(f"slice bounds must lie in {-n}..{n}"),
                )
                return None
        triple = slice(start, stop, step).indices(n)
        if len(range(*triple)) == 0:
            self.sink.error(
                ErrorCode.INDEX, f"slice `{render_expr(s)}` selects no elements of dimension {dim} (size {n})", s.span
            )
            return None
        return triple

    # -- array literals --------------------------------------------------------------------------
    def _array(self, e: ast.ArrayLit) -> ExprType | None:
        types = [self.type(x) for x in e.elements]
        if any(t is None for t in types):
            return None
        ts: list[ExprType] = [t for t in types if t is not None]
        first = ts[0]
        for i, (x, t) in enumerate(zip(e.elements, ts)):
            if t.shape != first.shape:
                self.sink.error(
                    ErrorCode.SHAPE,
                    f"array elements must have equal shapes: this one has shape {fmt_shape(t.shape)}, the first {fmt_shape(first.shape)}",
                    x.span,
                )
                return None
            if (t.dtype == "bool") != (first.dtype == "bool"):
                self.sink.error(
                    ErrorCode.TYPE, f"cannot mix bool and number elements in an array (element {i})", x.span
                )
                return None
        if all(t.dtype == "bool" for t in ts):
            dtype = "bool"
        elif all(t.dtype == "int" for t in ts):
            dtype = "int"
        else:
            dtype = "float"
        shape = (len(ts),) + first.shape
        if not self._size_ok(e, shape):
            return None
        self.rules[id(e)] = _Rule(Curvature.AFFINE, tuple((x, Mono.INCREASING) for x in e.elements), "array literal")
        curv = compose(Curvature.AFFINE, [t.curvature for t in ts], [Mono.INCREASING] * len(ts))
        const = None
        sign = sign_join([t.sign for t in ts])
        if all(t.const is not None for t in ts):
            const = self._finish_const(e, np.stack([np.asarray(t.const).astype(NP_DTYPES[dtype]) for t in ts]), dtype)
            if const is None:
                return None
            sign = sign_of_value(const) if dtype != "bool" else Sign.UNKNOWN
        return ExprType(dtype, shape, curv, sign, const)

    # -- atoms -----------------------------------------------------------------------------------
    def _call(self, e: ast.Call) -> ExprType | None:
        spec = ATOMS.get(e.func)
        if spec is None:
            if self.scope.lookup(e.func) is not None:
                self.sink.error(ErrorCode.UNKNOWN_ATOM, f"`{e.func}` is not a function", e.func_span)
            else:
                close = suggest(e.func, ATOMS)
                notes = (
                    [help_(f"did you mean `{close}`?")]
                    if close
                    else [note("see docs/language.md for the list of functions")]
                )
                self.sink.error(ErrorCode.UNKNOWN_ATOM, f"unknown function `{e.func}`", e.func_span, *notes)
            for a in e.args:  # still report problems inside the arguments
                self.type(a)
            return None
        n = len(e.args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            self.sink.error(
                ErrorCode.ARITY,
                f"`{e.func}` takes {spec.arity_text()}, but {n} {'was' if n == 1 else 'were'} given",
                e.span,
            )
            return None
        types = [self.type(a) for a in e.args]
        if any(t is None for t in types):
            return None
        ts: list[ExprType] = [t for t in types if t is not None]
        for a, t in zip(e.args, ts):
            if not self._no_bool(a, t, f"`{e.func}`"):
                return None
        for i in sorted(spec.const_args):
            if i < n:
                role = dict(spec.const_roles).get(i, f"argument {i + 1} of `{e.func}`")
                if not self.require_const(e.args[i], ts[i], role):
                    return None
                if ts[i].const is None:
                    return None
        try:
            shape = spec.shape(ts)
        except AtomError as err:
            where = e.args[err.arg].span if err.arg is not None else e.span
            notes = [help_(err.help)] if err.help else []
            self.sink.error(err.code, err.message, where, *notes)
            return None
        if not self._size_ok(e, shape):
            return None
        if e.func == "quad_form" and ts[1].const is not None:
            # The curvature rule takes the eigenvalues of P: cubic work.
            if not self._charge(e, limits.elements(ts[1].shape) * (ts[1].shape[0] if ts[1].shape else 1)):
                return None
        options = spec.options(ts)
        self.call_options[id(e)] = options
        intrinsic, reason = spec.intrinsic(ts)
        monos = spec.monotonicity(ts)
        self.rules[id(e)] = _Rule(intrinsic, tuple(zip(e.args, monos)), f"`{e.func}`", reason)
        curv = compose(intrinsic, [t.curvature for t in ts], monos)
        dtype = "int" if spec.int_preserving and all(t.dtype == "int" for t in ts) else "float"
        if e.func == "sum" and n == 2:
            dtype = "int" if ts[0].dtype == "int" else "float"
        sign = spec.sign(ts)
        const = None
        if all(t.const is not None for t in ts):
            if not self._charge(e, sum(limits.elements(t.shape) for t in ts) + limits.elements(shape)):
                return None
            values = [t.const for i, t in enumerate(ts) if i not in spec.option_args]
            value = apply_atom(e.func, values, dict(options))  # type: ignore[arg-type]
            const = self._finish_const(e, value, dtype)
            if const is None:
                return None
            sign = sign_of_value(const)
        return ExprType(dtype, tuple(shape), curv, sign, const)

    # -- DCP blame -------------------------------------------------------------------------------
    def blame(self, e: ast.Expr, want: Curvature) -> tuple[ast.Expr, ExprType, list[Note]]:
        """The smallest sub-expression of ``e`` responsible for ``e`` not being ``want``."""
        node = e
        last_note: Note | None = None
        while True:
            t = self.type(node)
            assert t is not None
            rule = self.rules.get(id(node))
            if rule is None:
                break
            if rule.intrinsic is Curvature.UNKNOWN or not satisfies(rule.intrinsic, want):
                if rule.reason:
                    last_note = note(rule.reason)
                break
            for child, mono in rule.children:
                ct = self.type(child)
                assert ct is not None
                need = arg_requirement(want, mono)
                if not satisfies(ct.curvature, need):
                    last_note = _step_note(rule, child, mono, need)
                    node, want = child, need
                    break
            else:
                break
        t = self.type(node)
        assert t is not None
        return node, t, [last_note] if last_note is not None else []


def _step_note(rule: _Rule, child: ast.Expr, mono: Mono, need: Curvature) -> Note | None:
    c = _short(child, 48)
    if mono is Mono.NONMONOTONE:
        return note(f"{rule.label} is not monotone in `{c}` here (its sign is unknown), so `{c}` must be affine")
    if mono is Mono.DECREASING:
        return note(f"{rule.label} is decreasing in `{c}`, so `{c}` must be {need.value}")
    if rule.intrinsic is not Curvature.AFFINE:
        return note(f"{rule.label} is {rule.intrinsic.value} and increasing in `{c}`, so `{c}` must be {need.value}")
    return None


def _curv_phrase(c: Curvature) -> str:
    if c is Curvature.UNKNOWN:
        return "has unknown curvature"
    return f"is {c.value}"


def _walk(e: object) -> Iterator[object]:
    """Pre-order, left-to-right walk over AST expression nodes (source order)."""
    stack = [e]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        yield n
        children: Sequence[object]
        if isinstance(n, ast.Call):
            children = n.args
        elif isinstance(n, ast.BinOp):
            children = (n.left, n.right)
        elif isinstance(n, ast.UnaryOp):
            children = (n.operand,)
        elif isinstance(n, ast.Index):
            children = (n.base,) + tuple(n.subscripts)
        elif isinstance(n, ast.Slice):
            children = (n.start, n.stop, n.step)
        elif isinstance(n, ast.Attr):
            children = (n.base,)
        elif isinstance(n, ast.Transpose):
            children = (n.operand,)
        elif isinstance(n, ast.ArrayLit):
            children = n.elements
        else:
            children = ()
        stack.extend(reversed(list(children)))


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    if len(a) == 1 and len(b) == 1:
        return () if a[0] == b[0] else None
    if len(a) == 2 and len(b) == 1:
        return (a[0],) if a[1] == b[0] else None
    if len(a) == 1 and len(b) == 2:
        return (b[1],) if a[0] == b[0] else None
    if len(a) == 2 and len(b) == 2:
        return (a[0], b[1]) if a[1] == b[0] else None
    return None


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def type_expr(expr: ast.Expr, scope: Scope, ctx: ExprContext, sink: DiagnosticSink) -> ExprType | None:
    """Type, shape, curvature and sign of ``expr`` (folded value when constant).

    Returns None after reporting when the expression is ill-formed; never raises for bad input.
    """
    return _Checker(scope, ctx, sink).type(expr)


def eval_const(expr: ast.Expr, scope: Scope, ctx: ExprContext, sink: DiagnosticSink) -> np.ndarray | None:
    """The value of a constant expression (E0107 at the first variable when it is not constant)."""
    ch = _Checker(scope, ctx, sink)
    t = ch.type(expr)
    if t is None:
        return None
    if not ch.require_const(expr, t, "this value"):
        return None
    return t.const


def check_type_size(t: ast.TypeRef, what: str, sink: DiagnosticSink) -> bool:
    """A declared type of at most MAX_ARRAY_ELEMENTS elements (E0007 at the type otherwise).

    Checked before a value is evaluated or a scalar is broadcast into the shape: `float[100000,
    100000]` would otherwise allocate 75 GiB."""
    n = limits.elements(t.dims)
    if n <= limits.MAX_ARRAY_ELEMENTS:
        return True
    sink.error(
        ErrorCode.LIMIT,
        f"{what} has {n:,} elements; an array has at most {limits.MAX_ARRAY_ELEMENTS:,}",
        t.span,
        help_("split it, or solve the large part outside the plan"),
    )
    return False


def check_param(
    decl: ast.ParamDecl, scope: Scope, ctx: ExprContext, sink: DiagnosticSink, typer: _Checker | None = None
) -> ParamSymbol:
    """Evaluate a param's value and check it against the declared dtype and shape.

    Always returns a symbol (so later uses resolve); its ``value`` is None when anything failed.
    """
    dtype = decl.type.base
    shape = tuple(decl.type.dims)
    if not check_type_size(decl.type, f"`{decl.name}`", sink):
        return ParamSymbol(decl.name, dtype, shape, None, decl.name_span)
    ch = typer or _Checker(scope, ctx, sink)
    value = _param_value(ch, decl.value, dtype, shape, f"`{decl.name}`", decl.type.span, sink)
    return ParamSymbol(decl.name, dtype, shape, value, decl.name_span)


def _param_value(
    ch: _Checker,
    expr: ast.Expr,
    dtype: str,
    shape: tuple[int, ...],
    what: str,
    decl_span: Span | None,
    sink: DiagnosticSink,
) -> np.ndarray | None:
    t = ch.type(expr)
    if t is None:
        return None
    if not ch.require_const(expr, t, f"the value of {what}"):
        return None
    if t.const is None:
        return None
    value = np.asarray(t.const)
    declared = f"{dtype}{list(shape) if shape else ''}".replace(" ", "")
    decl_note = [note(f"{what} is declared `{declared}` here", decl_span)] if decl_span is not None else []
    # dtype
    if dtype == "bool":
        if value.dtype != np.bool_:
            sink.error(
                ErrorCode.TYPE,
                f"{what} is declared bool, but its value is a {_dtype_name(value)}",
                expr.span,
                *decl_note,
            )
            return None
    else:
        if value.dtype == np.bool_:
            sink.error(ErrorCode.TYPE, f"{what} is declared {dtype}, but its value is a bool", expr.span, *decl_note)
            return None
        if dtype == "int":
            if value.dtype.kind == "f":
                frac = value != np.round(value)
                if np.any(frac):
                    bad = value[frac].flat[0]
                    sink.error(
                        ErrorCode.TYPE,
                        f"{what} is declared int, but its value {bad:g} is not an integer",
                        expr.span,
                        *decl_note,
                    )
                    return None
                if np.any(np.abs(value) > _INT_MAX):
                    sink.error(
                        ErrorCode.TYPE, f"{what} is declared int, but its value does not fit in 64 bits", expr.span
                    )
                    return None
            value = value.astype(np.int64)
        else:
            value = value.astype(np.float64)
    # shape
    if value.shape != shape:
        if value.shape == () and shape:
            value = np.full(shape, value, dtype=value.dtype)  # a scalar fills every entry
        else:
            from_load = any(isinstance(n, ast.Load) for n in _walk(expr))
            code = ErrorCode.LOAD_SHAPE if from_load else ErrorCode.VALUE_SHAPE
            sink.error(
                code,
                f"{what} is declared with shape {fmt_shape(shape)}, but its value has shape {fmt_shape(tuple(value.shape))}",
                expr.span,
                *decl_note,
            )
            return None
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):  # pragma: no cover - folding catches it first
        sink.error(ErrorCode.LOAD_NONFINITE, f"the value of {what} contains NaN or Inf", expr.span)
        return None
    value = np.array(value, copy=True)
    value.setflags(write=False)
    return value


def _dtype_name(v: np.ndarray) -> str:
    return {"b": "bool", "i": "int", "u": "int"}.get(v.dtype.kind, "float")


def check_objective(
    obj: ast.Objective, scope: Scope, ctx: ExprContext, sink: DiagnosticSink, typer: _Checker | None = None
) -> bool:
    """A scalar numeric objective, convex for ``minimize`` and concave for ``maximize``."""
    ch = typer or _Checker(scope, ctx, sink)
    t = ch.type(obj.expr)
    if t is None:
        return False
    if t.shape != ():
        sink.error(
            ErrorCode.NOT_SCALAR,
            f"the objective must be a scalar, but `{_short(obj.expr)}` has shape {fmt_shape(t.shape)}",
            obj.expr.span,
            help_("reduce it with `sum(...)`, `sum_squares(...)` or a norm"),
        )
        return False
    if not ch._no_bool(obj.expr, t, "an objective"):
        return False
    want = Curvature.CONVEX if obj.sense == "minimize" else Curvature.CONCAVE
    if satisfies(t.curvature, want):
        return True
    node, nt, notes = ch.blame(obj.expr, want)
    sink.error(
        ErrorCode.NOT_CONVEX_OBJECTIVE,
        f"`{_short(node)}` {_curv_phrase(nt.curvature)}, but `{obj.sense}` needs a {want.value} objective",
        node.span,
        *notes,
    )
    return False


def check_constraint(
    c: ast.Constraint, scope: Scope, ctx: ExprContext, sink: DiagnosticSink, typer: _Checker | None = None
) -> bool:
    """Shapes of both sides (E0201) and DCP (E0302): convex <= concave, concave >= convex, affine == affine."""
    ch = typer or _Checker(scope, ctx, sink)
    lt = ch.type(c.left)
    rt = ch.type(c.right)
    if lt is None or rt is None:
        return False
    if not (ch._no_bool(c.left, lt, "a constraint") and ch._no_bool(c.right, rt, "a constraint")):
        return False
    try:
        broadcast([lt.shape, rt.shape])
    except AtomError:
        sink.error(
            ErrorCode.SHAPE,
            f"the sides of `{c.op}` have shapes {fmt_shape(lt.shape)} and {fmt_shape(rt.shape)}",
            c.span,
            note("both sides need equal shapes, or a scalar on one side"),
        )
        return False
    if c.op == "<=":
        wants = (
            (c.left, lt, Curvature.CONVEX, "the left side of `<=` must be convex"),
            (c.right, rt, Curvature.CONCAVE, "the right side of `<=` must be concave"),
        )
    elif c.op == ">=":
        wants = (
            (c.left, lt, Curvature.CONCAVE, "the left side of `>=` must be concave"),
            (c.right, rt, Curvature.CONVEX, "the right side of `>=` must be convex"),
        )
    else:
        wants = (
            (c.left, lt, Curvature.AFFINE, "both sides of `==` must be affine"),
            (c.right, rt, Curvature.AFFINE, "both sides of `==` must be affine"),
        )
    ok = True
    for side, st, want, why in wants:
        if satisfies(st.curvature, want):
            continue
        node, nt, notes = ch.blame(side, want)
        if c.op == "==" and nt.curvature in (Curvature.CONVEX, Curvature.CONCAVE):
            notes = notes + [help_("an equality must be affine; a convex function can only be bounded above (`<=`)")]
        sink.error(
            ErrorCode.NOT_DCP_CONSTRAINT, f"`{_short(node)}` {_curv_phrase(nt.curvature)}, but {why}", node.span, *notes
        )
        ok = False
    return ok


def check_affine(
    expr: ast.Expr, scope: Scope, ctx: ExprContext, sink: DiagnosticSink, what: str, typer: _Checker | None = None
) -> ExprType | None:
    """Type ``expr`` and require it to be affine (or constant); E0303 names ``what`` (e.g.
    "morphism field `hours`") and the smallest non-affine sub-expression."""
    ch = typer or _Checker(scope, ctx, sink)
    t = ch.type(expr)
    if t is None:
        return None
    if not ch._no_bool(expr, t, what):
        return None
    if satisfies(t.curvature, Curvature.AFFINE):
        return t
    node, nt, notes = ch.blame(expr, Curvature.AFFINE)
    sink.error(
        ErrorCode.NOT_AFFINE,
        f"`{_short(node)}` {_curv_phrase(nt.curvature)}, but {what} must be affine",
        node.span,
        *notes,
    )
    return None


#: a typer for one scope (opaque outside this module: create it with :func:`make_checker`)
Typer = _Checker


def make_checker(scope: Scope, ctx: ExprContext, sink: DiagnosticSink) -> _Checker:
    """One typer for a scope: pass it to the ``check_*`` functions of that scope, then keep its
    :meth:`~_Checker.type_map` with the checked item (lowering reads it)."""
    return _Checker(scope, ctx, sink)
