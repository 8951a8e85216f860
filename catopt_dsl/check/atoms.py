"""The atom table: curvature as a type system, driven by one entry per function (cvxpy style).

Each :class:`AtomSpec` states

* its arity (``min_args``..``max_args``),
* a shape rule (argument shapes -> result shape, or an :class:`AtomError` with the code to report),
* its *intrinsic* curvature (what the function itself is: convex, concave or affine),
* its monotonicity in each argument, which may depend on the argument's sign (``square`` is
  increasing for nonnegative arguments, decreasing for nonpositive ones, neither otherwise),
* the sign of its result,
* which arguments must be constant (``quad_form``'s matrix, ``huber``'s ``M``, ``sum``'s axis) and
  which of those become IR options rather than IR arguments.

The disciplined-convex-programming (DCP) composition rule then gives every expression a curvature:
``f(g1, ..., gk)`` is convex when ``f`` is convex (or affine) and for every argument ``gi`` is affine,
or ``f`` is increasing in it and ``gi`` is convex, or ``f`` is decreasing in it and ``gi`` is concave;
concave symmetrically; affine when both hold. :func:`compose` implements exactly that.

Atoms (``x``: any shape unless stated; "elementwise" keeps the shape of ``x``):

==============  ==========  ======================  ==============================================
atom            curvature   monotonicity            notes
==============  ==========  ======================  ==============================================
sum(x[, axis])  affine      increasing              scalar, or ``x`` with ``axis`` (constant int) removed
mean(x)         affine      increasing              scalar (extra atom)
sum_squares(x)  convex      sign-dependent          scalar, nonnegative
square(x)       convex      sign-dependent          elementwise, nonnegative
abs(x)          convex      sign-dependent          elementwise, nonnegative
norm1(x)        convex      sign-dependent          scalar; entrywise over the flattened ``x``
norm2(x)        convex      sign-dependent          scalar; Euclidean norm of the flattened ``x``
norm_inf(x)     convex      sign-dependent          scalar; largest ``|x_i|``
quad_form(x,P)  by P        see below               ``x`` (n,), ``P`` (n, n) constant; convex if P is
                                                    PSD, concave if NSD; uses ``(P + P')/2``
logistic(x)     convex      increasing              elementwise ``log(1 + exp(x))``, nonnegative
log_sum_exp(x)  convex      increasing              scalar
exp(x)          convex      increasing              elementwise, nonnegative
log(x)          concave     increasing              elementwise
sqrt(x)         concave     increasing              elementwise, nonnegative
pos(x)          convex      increasing              elementwise ``max(x, 0)``
neg(x)          convex      decreasing              elementwise ``max(-x, 0)``
maximum(a,b..)  convex      increasing              elementwise, 2+ args, scalars broadcast
minimum(a,b..)  concave     increasing              elementwise, 2+ args, scalars broadcast
max(x)          convex      increasing              scalar
min(x)          concave     increasing              scalar
huber(x[, M])   convex      sign-dependent          elementwise; ``M`` a constant positive scalar
multiply(a, b)  affine      by the constant's sign  elementwise, scalars broadcast; one side constant
dot(a, b)       affine      by the constant's sign  (n,) . (n,) -> scalar; one side constant
transpose(x)    affine      increasing              same as ``x'``
==============  ==========  ======================  ==============================================

"sign-dependent": increasing where the argument is known nonnegative, decreasing where it is known
nonpositive, otherwise not monotone (so the argument must be affine). ``quad_form`` is increasing in
``x`` for nonnegative ``x`` and entrywise nonnegative ``P`` (decreasing for nonpositive ``x``), else
not monotone. ``multiply``/``dot`` of two non-constant expressions has unknown curvature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import numpy as np

from catopt_dsl.errors import ErrorCode

Shape = tuple[int, ...]


class Curvature(Enum):
    CONSTANT = "constant"
    AFFINE = "affine"
    CONVEX = "convex"
    CONCAVE = "concave"
    UNKNOWN = "unknown"


class Sign(Enum):
    NONNEG = "nonnegative"
    NONPOS = "nonpositive"
    ZERO = "zero"
    UNKNOWN = "unknown"


class Mono(Enum):
    INCREASING = "increasing"
    DECREASING = "decreasing"
    NONMONOTONE = "not monotone"


class ArgType(Protocol):
    """What the atom rules read from an argument's type (``check.exprs.ExprType`` satisfies it)."""

    @property
    def shape(self) -> Shape: ...

    @property
    def sign(self) -> Sign: ...

    @property
    def curvature(self) -> Curvature: ...

    @property
    def const(self) -> np.ndarray | None: ...


class AtomError(Exception):
    """Raised by a shape rule; ``arg`` is the index of the argument to point at (None: the call)."""

    def __init__(self, code: ErrorCode, message: str, arg: int | None = None, help: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.arg = arg
        self.help = help


# ---------------------------------------------------------------------------------------------
# Curvature and sign algebra
# ---------------------------------------------------------------------------------------------


def is_constant(c: Curvature) -> bool:
    return c is Curvature.CONSTANT


def satisfies(c: Curvature, want: Curvature) -> bool:
    """Whether curvature ``c`` meets requirement ``want`` (CONVEX, CONCAVE or AFFINE)."""
    if c in (Curvature.CONSTANT, Curvature.AFFINE):
        return True
    if want is Curvature.AFFINE:
        return False
    return c is want


def flip(c: Curvature) -> Curvature:
    if c is Curvature.CONVEX:
        return Curvature.CONCAVE
    if c is Curvature.CONCAVE:
        return Curvature.CONVEX
    return c


def compose(intrinsic: Curvature, args: Sequence[Curvature], monos: Sequence[Mono]) -> Curvature:
    """The DCP composition rule (see the module docstring)."""
    if all(a is Curvature.CONSTANT for a in args):
        return Curvature.CONSTANT
    if intrinsic is Curvature.UNKNOWN:
        return Curvature.UNKNOWN

    def ok(want: Curvature) -> bool:
        if intrinsic not in (Curvature.AFFINE, want):
            return False
        return all(satisfies(a, arg_requirement(want, m)) for a, m in zip(args, monos))

    convex, concave = ok(Curvature.CONVEX), ok(Curvature.CONCAVE)
    if convex and concave:
        return Curvature.AFFINE
    if convex:
        return Curvature.CONVEX
    if concave:
        return Curvature.CONCAVE
    return Curvature.UNKNOWN


def arg_requirement(want: Curvature, mono: Mono) -> Curvature:
    """What an argument must be so that the result can be ``want``."""
    if want is Curvature.AFFINE or mono is Mono.NONMONOTONE:
        return Curvature.AFFINE
    return want if mono is Mono.INCREASING else flip(want)


def sign_of_value(value: np.ndarray | None) -> Sign:
    if value is None or value.dtype == np.bool_ or value.size == 0:
        return Sign.UNKNOWN
    # The extremes decide it (a NaN makes both NaN, an infinity makes one infinite): two
    # reductions instead of four element-wise passes, on every constant the checker folds.
    return sign_of_range(value.min().item(), value.max().item())


def sign_of_range(lo: float, hi: float) -> Sign:
    """The sign of every value in ``[lo, hi]``; UNKNOWN when either end is not finite."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Sign.UNKNOWN
    if lo == 0 and hi == 0:
        return Sign.ZERO
    if lo >= 0:
        return Sign.NONNEG
    if hi <= 0:
        return Sign.NONPOS
    return Sign.UNKNOWN


def sign_neg(s: Sign) -> Sign:
    return {Sign.NONNEG: Sign.NONPOS, Sign.NONPOS: Sign.NONNEG}.get(s, s)


def sign_add(a: Sign, b: Sign) -> Sign:
    if a is Sign.ZERO:
        return b
    if b is Sign.ZERO:
        return a
    if a is b and a is not Sign.UNKNOWN:
        return a
    return Sign.UNKNOWN


def sign_mul(a: Sign, b: Sign) -> Sign:
    if a is Sign.ZERO or b is Sign.ZERO:
        return Sign.ZERO
    if Sign.UNKNOWN in (a, b):
        return Sign.UNKNOWN
    return Sign.NONNEG if a is b else Sign.NONPOS


def sign_join(signs: Sequence[Sign]) -> Sign:
    """The sign every element of a stack/`sum` of these has."""
    out = Sign.ZERO
    for s in signs:
        out = sign_add(out, s)
    return out


def mono_by_sign(s: Sign) -> Mono:
    """Monotonicity of an even-ish function (``|x|``, ``x^2``) in an argument of sign ``s``."""
    if s in (Sign.NONNEG, Sign.ZERO):
        return Mono.INCREASING
    if s is Sign.NONPOS:
        return Mono.DECREASING
    return Mono.NONMONOTONE


def mono_scale(s: Sign) -> Mono:
    """Monotonicity of ``c * x`` in ``x`` for a constant ``c`` of sign ``s``."""
    if s in (Sign.NONNEG, Sign.ZERO):
        return Mono.INCREASING
    if s is Sign.NONPOS:
        return Mono.DECREASING
    return Mono.NONMONOTONE


# ---------------------------------------------------------------------------------------------
# Shape rules
# ---------------------------------------------------------------------------------------------


def fmt_shape(shape: Shape) -> str:
    if not shape:
        return "a scalar"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def broadcast(shapes: Sequence[Shape], what: str = "operands") -> Shape:
    """The language's broadcasting rule: scalars combine with anything, otherwise shapes must match."""
    out: Shape = ()
    first: int | None = None
    for i, s in enumerate(shapes):
        if s == ():
            continue
        if first is None:
            out, first = s, i
        elif s != out:
            raise AtomError(
                ErrorCode.SHAPE,
                f"{what} have shapes {fmt_shape(out)} and {fmt_shape(s)}; elementwise operations need equal shapes or a scalar",
                i,
            )
    return out


def _elementwise(args: Sequence[ArgType]) -> Shape:
    return args[0].shape


def _scalar(args: Sequence[ArgType]) -> Shape:
    return ()


def _broadcast_all(args: Sequence[ArgType]) -> Shape:
    return broadcast([a.shape for a in args], "arguments")


def _int_option(value: np.ndarray | None) -> int | None:
    if value is None or value.shape != () or value.dtype.kind not in "iu":
        return None
    return int(value)


def _sum_shape(args: Sequence[ArgType]) -> Shape:
    if len(args) == 1:
        return ()
    x, ax = args
    axis = _int_option(ax.const)
    if axis is None:
        raise AtomError(ErrorCode.TYPE, "the axis of `sum` must be a constant int", 1)
    nd = len(x.shape)
    if not -nd <= axis < nd:
        raise AtomError(
            ErrorCode.INDEX, f"axis {axis} is out of range for an argument of shape {fmt_shape(x.shape)}", 1
        )
    axis %= nd
    return x.shape[:axis] + x.shape[axis + 1 :]


def _sum_options(args: Sequence[ArgType]) -> tuple[tuple[str, Any], ...]:
    if len(args) == 1:
        return ()
    axis = _int_option(args[1].const)
    assert axis is not None
    return (("axis", axis % len(args[0].shape)),)


def _quad_form_shape(args: Sequence[ArgType]) -> Shape:
    x, P = args
    if len(x.shape) != 1:
        raise AtomError(ErrorCode.MATMUL_SHAPE, f"`quad_form` needs a vector `x`, got {fmt_shape(x.shape)}", 0)
    n = x.shape[0]
    if P.shape != (n, n):
        raise AtomError(
            ErrorCode.MATMUL_SHAPE,
            f"`quad_form(x, P)` with `x` of shape {fmt_shape(x.shape)} needs `P` of shape ({n}, {n}), got {fmt_shape(P.shape)}",
            1,
        )
    return ()


def _dot_shape(args: Sequence[ArgType]) -> Shape:
    a, b = args
    if len(a.shape) != 1 or a.shape != b.shape:
        raise AtomError(
            ErrorCode.MATMUL_SHAPE,
            f"`dot` needs two vectors of equal length, got {fmt_shape(a.shape)} and {fmt_shape(b.shape)}",
            None,
        )
    return ()


def _huber_shape(args: Sequence[ArgType]) -> Shape:
    if len(args) == 2:
        M = args[1].const
        if args[1].shape != () or M is None or M.dtype == np.bool_ or not float(M) > 0:
            raise AtomError(ErrorCode.TYPE, "`huber`'s threshold `M` must be a positive scalar constant", 1)
    return args[0].shape


def _huber_options(args: Sequence[ArgType]) -> tuple[tuple[str, Any], ...]:
    M = 1.0 if len(args) == 1 else float(np.asarray(args[1].const))
    return (("M", M),)


def _transpose_shape(args: Sequence[ArgType]) -> Shape:
    return tuple(reversed(args[0].shape))


# ---------------------------------------------------------------------------------------------
# Monotonicity, sign and curvature rules
# ---------------------------------------------------------------------------------------------


def _inc(args: Sequence[ArgType]) -> tuple[Mono, ...]:
    return tuple(Mono.INCREASING for _ in args)


def _dec(args: Sequence[ArgType]) -> tuple[Mono, ...]:
    return tuple(Mono.DECREASING for _ in args)


def _even_first(args: Sequence[ArgType]) -> tuple[Mono, ...]:
    return (mono_by_sign(args[0].sign),) + tuple(Mono.INCREASING for _ in args[1:])


def _by_other_const(args: Sequence[ArgType]) -> tuple[Mono, ...]:
    a, b = args
    # The monotonicity in one factor is set by the sign of the other, constant, factor.
    ma = mono_scale(b.sign) if is_constant(b.curvature) else Mono.NONMONOTONE
    mb = mono_scale(a.sign) if is_constant(a.curvature) else Mono.NONMONOTONE
    return (ma, mb)


def _quad_form_mono(args: Sequence[ArgType]) -> tuple[Mono, ...]:
    x, P = args
    if P.const is not None and np.all(P.const >= 0):
        return (mono_by_sign(x.sign), Mono.INCREASING)
    return (Mono.NONMONOTONE, Mono.INCREASING)


def _nonneg(args: Sequence[ArgType]) -> Sign:
    return Sign.NONNEG


def _unknown_sign(args: Sequence[ArgType]) -> Sign:
    return Sign.UNKNOWN


def _same_sign(args: Sequence[ArgType]) -> Sign:
    return args[0].sign


def _sum_sign(args: Sequence[ArgType]) -> Sign:
    return sign_join([args[0].sign])


def _max_sign(args: Sequence[ArgType]) -> Sign:
    signs = [a.sign for a in args]
    if any(s is Sign.NONNEG for s in signs):
        return Sign.NONNEG
    if all(s in (Sign.NONPOS, Sign.ZERO) for s in signs):
        return Sign.ZERO if all(s is Sign.ZERO for s in signs) else Sign.NONPOS
    if any(s is Sign.ZERO for s in signs):
        return Sign.NONNEG
    return Sign.UNKNOWN


def _min_sign(args: Sequence[ArgType]) -> Sign:
    signs = [a.sign for a in args]
    if any(s is Sign.NONPOS for s in signs):
        return Sign.NONPOS
    if all(s in (Sign.NONNEG, Sign.ZERO) for s in signs):
        return Sign.ZERO if all(s is Sign.ZERO for s in signs) else Sign.NONNEG
    if any(s is Sign.ZERO for s in signs):
        return Sign.NONPOS
    return Sign.UNKNOWN


def _product_sign(args: Sequence[ArgType]) -> Sign:
    return sign_mul(args[0].sign, args[1].sign)


def _quad_form_sign(args: Sequence[ArgType]) -> Sign:
    kind = psd_kind(args[1].const)
    return {"psd": Sign.NONNEG, "nsd": Sign.NONPOS}.get(kind, Sign.UNKNOWN)


def psd_kind(P: np.ndarray | None, tol: float = 1e-9) -> str:
    """``"psd"``, ``"nsd"``, ``"indefinite"`` or ``"unknown"`` (value missing) for a square matrix."""
    if P is None or P.ndim != 2 or P.shape[0] != P.shape[1] or P.dtype == np.bool_:
        return "unknown"
    sym = (np.asarray(P, dtype=np.float64) + np.asarray(P, dtype=np.float64).T) / 2.0
    if not np.all(np.isfinite(sym)):
        return "unknown"
    eig = np.linalg.eigvalsh(sym) if sym.size else np.zeros(0)
    scale = max(1.0, float(np.max(np.abs(eig)))) if eig.size else 1.0
    if np.all(eig >= -tol * scale):
        return "psd"
    if np.all(eig <= tol * scale):
        return "nsd"
    return "indefinite"


def _quad_form_curv(args: Sequence[ArgType]) -> tuple[Curvature, str | None]:
    P = args[1].const
    kind = psd_kind(P)
    if kind in ("psd", "unknown"):
        return Curvature.CONVEX, None
    if kind == "nsd":
        return Curvature.CONCAVE, None
    assert P is not None
    eig = np.linalg.eigvalsh((np.asarray(P, dtype=np.float64) + np.asarray(P, dtype=np.float64).T) / 2.0)
    return Curvature.UNKNOWN, (
        f"the matrix of `quad_form` is indefinite (eigenvalues from {eig[0]:.4g} to {eig[-1]:.4g}); "
        "it must be positive semidefinite for a convex `quad_form`"
    )


def _one_const_curv(args: Sequence[ArgType]) -> tuple[Curvature, str | None]:
    if any(is_constant(a.curvature) for a in args):
        return Curvature.AFFINE, None
    return Curvature.UNKNOWN, "a product is convex only when one of its factors is constant"


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

CurvatureRule = Callable[[Sequence[ArgType]], "tuple[Curvature, str | None]"]


@dataclass(frozen=True)
class AtomSpec:
    """One atom of the language. See the module docstring for the meaning of each rule."""

    name: str
    min_args: int
    max_args: int | None  # None: unbounded
    shape: Callable[[Sequence[ArgType]], Shape]
    curvature: Curvature | CurvatureRule  # intrinsic curvature (a rule when it depends on constants)
    monotonicity: Callable[[Sequence[ArgType]], tuple[Mono, ...]]
    sign: Callable[[Sequence[ArgType]], Sign]
    const_args: frozenset[int] = frozenset()  # argument positions that must be constant (E0107)
    option_args: frozenset[int] = frozenset()  # constant positions lowered to IR options, not args
    options: Callable[[Sequence[ArgType]], tuple[tuple[str, Any], ...]] = field(default=lambda args: ())
    summary: str = ""
    #: the numpy implementation: ``numeric(*arg_values, **options)`` (constant folding, IR evaluation)
    numeric: Callable[..., np.ndarray] = field(default=lambda *a, **k: np.asarray(np.nan))
    #: int arguments give an int result (so e.g. `max(counts)` can size an index)
    int_preserving: bool = False
    #: what to call a constant argument in E0107 messages, by position
    const_roles: tuple[tuple[int, str], ...] = ()
    #: where the atom is finite: "all", or "nonnegative"/"positive" arguments only
    domain: str = "all"
    #: lowering rewrites it into other IR (``multiply`` -> ``*``, ``dot`` -> ``@``, ``mean`` ->
    #: ``sum / size``, ``transpose`` -> a transpose node): backends never see it as an IRCall
    rewritten: bool = False

    def arity_text(self) -> str:
        if self.max_args == self.min_args:
            n = self.min_args
            return f"{n} argument{'s' if n != 1 else ''}"
        if self.max_args is None:
            return f"{self.min_args} or more arguments"
        return f"{self.min_args} to {self.max_args} arguments"

    def intrinsic(self, args: Sequence[ArgType]) -> tuple[Curvature, str | None]:
        """The function's own curvature at these arguments, with a reason when it is UNKNOWN."""
        if isinstance(self.curvature, Curvature):
            return self.curvature, None
        return self.curvature(args)


def _atom(
    name: str,
    n: tuple[int, int | None],
    shape: Callable[[Sequence[ArgType]], Shape],
    curvature: Curvature | CurvatureRule,
    mono: Callable[[Sequence[ArgType]], tuple[Mono, ...]],
    sign: Callable[[Sequence[ArgType]], Sign],
    summary: str,
    const_args: Sequence[int] = (),
    option_args: Sequence[int] = (),
    options: Callable[[Sequence[ArgType]], tuple[tuple[str, Any], ...]] | None = None,
    *,
    numeric: Callable[..., np.ndarray],
    int_preserving: bool = False,
    const_roles: Sequence[tuple[int, str]] = (),
    domain: str = "all",
    rewritten: bool = False,
) -> AtomSpec:
    return AtomSpec(
        name,
        n[0],
        n[1],
        shape,
        curvature,
        mono,
        sign,
        frozenset(const_args),
        frozenset(option_args),
        options or (lambda args: ()),
        summary,
        numeric,
        int_preserving,
        tuple(const_roles),
        domain,
        rewritten,
    )


# -- numeric implementations (numpy): constant folding and IR evaluation both use these ----------


def _log_sum_exp(x: np.ndarray) -> np.ndarray:
    flat = np.asarray(x, dtype=np.float64).ravel()
    m = float(np.max(flat))
    if not np.isfinite(m):
        return np.asarray(m)
    return np.asarray(m + np.log(np.sum(np.exp(flat - m))))


def _huber(x: np.ndarray, M: float = 1.0) -> np.ndarray:
    a = np.abs(np.asarray(x, dtype=np.float64))
    return np.where(a <= M, a * a, 2.0 * M * a - M * M)


def _fold(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(*args: np.ndarray) -> np.ndarray:
        out = np.asarray(args[0])
        for a in args[1:]:
            out = fn(out, np.asarray(a))
        return out

    return apply


def _f(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


_CVX, _CCV, _AFF = Curvature.CONVEX, Curvature.CONCAVE, Curvature.AFFINE

ATOMS: dict[str, AtomSpec] = {
    a.name: a
    for a in [
        _atom(
            "sum",
            (1, 2),
            _sum_shape,
            _AFF,
            lambda a: (Mono.INCREASING,),
            _sum_sign,
            "sum of entries (or along `axis`)",
            const_args=(1,),
            option_args=(1,),
            options=_sum_options,
            numeric=lambda x, axis=None: np.sum(x, axis=axis),
            int_preserving=True,
            const_roles=((1, "the axis of `sum`"),),
        ),
        _atom("mean", (1, 1), _scalar, _AFF, _inc, _same_sign, "mean of all entries",
              numeric=lambda x: np.mean(_f(x)), rewritten=True),
        _atom("sum_squares", (1, 1), _scalar, _CVX, _even_first, _nonneg, "sum of squared entries",
              numeric=lambda x: np.sum(_f(x) ** 2)),
        _atom("square", (1, 1), _elementwise, _CVX, _even_first, _nonneg, "elementwise square",
              numeric=lambda x: _f(x) ** 2),
        _atom("abs", (1, 1), _elementwise, _CVX, _even_first, _nonneg, "elementwise absolute value",
              numeric=lambda x: np.abs(x), int_preserving=True),
        _atom("norm1", (1, 1), _scalar, _CVX, _even_first, _nonneg, "sum of absolute values",
              numeric=lambda x: np.sum(np.abs(_f(x)))),
        _atom("norm2", (1, 1), _scalar, _CVX, _even_first, _nonneg, "Euclidean (Frobenius) norm",
              numeric=lambda x: np.sqrt(np.sum(_f(x) ** 2))),
        _atom("norm_inf", (1, 1), _scalar, _CVX, _even_first, _nonneg, "largest absolute value",
              numeric=lambda x: np.max(np.abs(_f(x)))),
        _atom(
            "quad_form",
            (2, 2),
            _quad_form_shape,
            _quad_form_curv,
            _quad_form_mono,
            _quad_form_sign,
            "x' P x with constant P",
            const_args=(1,),
            numeric=lambda x, P: _f(x) @ _f(P) @ _f(x),
            const_roles=((1, "the matrix `P` of `quad_form`"),),
        ),
        _atom("logistic", (1, 1), _elementwise, _CVX, _inc, _nonneg, "elementwise log(1 + exp(x))",
              numeric=lambda x: np.logaddexp(0.0, _f(x))),
        _atom("log_sum_exp", (1, 1), _scalar, _CVX, _inc, _unknown_sign, "log(sum(exp(x)))",
              numeric=_log_sum_exp),
        _atom("exp", (1, 1), _elementwise, _CVX, _inc, _nonneg, "elementwise exponential",
              numeric=lambda x: np.exp(_f(x))),
        _atom("log", (1, 1), _elementwise, _CCV, _inc, _unknown_sign, "elementwise natural logarithm",
              numeric=lambda x: np.log(_f(x)), domain="positive"),
        _atom("sqrt", (1, 1), _elementwise, _CCV, _inc, _nonneg, "elementwise square root",
              numeric=lambda x: np.sqrt(_f(x)), domain="nonnegative"),
        _atom("pos", (1, 1), _elementwise, _CVX, _inc, _nonneg, "elementwise max(x, 0)",
              numeric=lambda x: np.maximum(_f(x), 0.0)),
        _atom("neg", (1, 1), _elementwise, _CVX, _dec, _nonneg, "elementwise max(-x, 0)",
              numeric=lambda x: np.maximum(-_f(x), 0.0)),
        _atom("maximum", (2, None), _broadcast_all, _CVX, _inc, _max_sign, "elementwise maximum",
              numeric=_fold(np.maximum), int_preserving=True),
        _atom("minimum", (2, None), _broadcast_all, _CCV, _inc, _min_sign, "elementwise minimum",
              numeric=_fold(np.minimum), int_preserving=True),
        _atom("max", (1, 1), _scalar, _CVX, _inc, _same_sign, "largest entry",
              numeric=lambda x: np.max(x), int_preserving=True),
        _atom("min", (1, 1), _scalar, _CCV, _inc, _same_sign, "smallest entry",
              numeric=lambda x: np.min(x), int_preserving=True),
        _atom(
            "huber",
            (1, 2),
            _huber_shape,
            _CVX,
            _even_first,
            _nonneg,
            "elementwise Huber penalty",
            const_args=(1,),
            option_args=(1,),
            options=_huber_options,
            numeric=_huber,
            const_roles=((1, "the threshold `M` of `huber`"),),
        ),
        _atom(
            "multiply",
            (2, 2),
            _broadcast_all,
            _one_const_curv,
            _by_other_const,
            _product_sign,
            "elementwise product (one side constant)",
            numeric=lambda a, b: np.multiply(a, b),
            int_preserving=True,
            rewritten=True,
        ),
        _atom(
            "dot",
            (2, 2),
            _dot_shape,
            _one_const_curv,
            _by_other_const,
            _product_sign,
            "inner product of two vectors (one side constant)",
            numeric=lambda a, b: np.dot(a, b),
            int_preserving=True,
            rewritten=True,
        ),
        _atom("transpose", (1, 1), _transpose_shape, _AFF, _inc, _same_sign, "transpose (same as x')",
              numeric=lambda x: np.transpose(x), int_preserving=True, rewritten=True),
    ]
}


def apply_atom(name: str, args: Sequence[np.ndarray], options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Evaluate atom ``name`` on numpy values (numpy floating-point warnings are silenced)."""
    spec = ATOMS.get(name)
    if spec is None:
        raise ValueError(f"unknown atom `{name}`")
    with np.errstate(all="ignore"):
        return np.asarray(spec.numeric(*args, **dict(options or {})))


def apply_binary(op: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The numpy meaning of ``+ - * / @`` (``*`` broadcasts a scalar or is elementwise)."""
    with np.errstate(all="ignore"):
        if op == "+":
            return np.asarray(left + right)
        if op == "-":
            return np.asarray(left - right)
        if op == "*":
            return np.asarray(left * right)
        if op == "/":
            return np.asarray(np.true_divide(left, right))
        if op == "@":
            return np.asarray(np.matmul(left, right))
    raise ValueError(f"unknown operator `{op}`")
