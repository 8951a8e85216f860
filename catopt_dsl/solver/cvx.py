"""IR expression -> CVXPY expression builder.

``to_cvxpy(expr, vars, params)`` walks an IR expression tree (``catopt_dsl.ir.model``) and returns
the equivalent CVXPY expression (or a numpy array when the sub-tree is constant; CVXPY accepts
numpy arrays wherever it accepts constants). Every IR node and every atom of the language's atom
table is covered.

Conventions (they match the language reference and ``catopt_dsl.ir.evaluate``):

* Shapes are taken from the IR (every node knows its shape); reshapes are always in C order.
* ``norm1``, ``norm2`` and ``norm_inf`` are *entrywise* norms of their argument flattened
  (``norm2`` of a matrix is the Frobenius norm), never induced matrix norms.
* ``sum`` takes an optional ``axis`` option; without it the result is a scalar.
* ``log_sum_exp``/``max``/``min`` reduce over all entries (or over ``axis`` when given).
* ``huber`` is elementwise; ``M`` comes from the ``M`` option, or from a constant second argument,
  default 1.  CVXPY's ``huber(x, M)`` is ``x^2`` for ``|x| <= M`` and ``2M|x| - M^2`` beyond.
* ``pos(x) = max(x, 0)``, ``neg(x) = max(-x, 0)`` (both elementwise, convex).
* ``dot(a, b)`` is ``sum(multiply(a, b))`` (a scalar; one side must be constant to be DCP).
* ``maximum``/``minimum`` take two or more arguments (elementwise, scalar broadcast).
* Binary ``*`` with a scalar side is scalar multiplication, otherwise elementwise (``multiply``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import cvxpy as cp
import numpy as np

from catopt_dsl.ir.model import (
    IRBinary,
    IRCall,
    IRConst,
    IRExpr,
    IRIndex,
    IRNeg,
    IRParamRef,
    IRStack,
    IRTranspose,
    IRVar,
    IRVarRef,
)

__all__ = ["to_cvxpy", "stacked_views", "solve_problem", "SUPPORTED_ATOMS"]

CvxLike = Any  # cp.Expression | np.ndarray


def _is_expr(value: CvxLike) -> bool:
    return isinstance(value, cp.Expression)


def _as_array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        arr = arr.reshape(shape)
    return arr


def _reshape(value: CvxLike, shape: tuple[int, ...]) -> CvxLike:
    if _is_expr(value):
        if tuple(value.shape) == tuple(shape):
            return value
        return cp.reshape(value, shape, order="C")
    return np.reshape(np.asarray(value, dtype=np.float64), shape)


def _flat(value: CvxLike) -> CvxLike:
    if _is_expr(value):
        size = int(np.prod(value.shape, dtype=np.int64)) if value.shape else 1
        if len(value.shape) == 1:
            return value
        return cp.reshape(value, (size,), order="C")
    return np.asarray(value, dtype=np.float64).reshape(-1)


def _option(call: IRCall, name: str, default: Any = None) -> Any:
    for key, value in call.options:
        if key == name:
            return value
    return default


def _const_value(value: CvxLike) -> np.ndarray:
    """A constant argument (e.g. huber's M, quad_form's P) as a numpy array."""
    if _is_expr(value):
        if not value.is_constant():
            raise ValueError("expected a constant argument")
        return np.asarray(value.value, dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def _mul(left: CvxLike, right: CvxLike, lshape: tuple[int, ...], rshape: tuple[int, ...]) -> CvxLike:
    if not _is_expr(left) and not _is_expr(right):
        return np.multiply(left, right)
    if lshape == () or rshape == ():
        # Scalar multiplication; put the CVXPY operand first so numpy never broadcasts it.
        if _is_expr(left):
            return left * right
        return right * left
    return cp.multiply(left, right)


def _matmul(left: CvxLike, right: CvxLike) -> CvxLike:
    if not _is_expr(left) and not _is_expr(right):
        return np.asarray(left) @ np.asarray(right)
    if not _is_expr(left):
        left = cp.Constant(np.asarray(left, dtype=np.float64))
    return left @ right


def _index_key(key: tuple[int | tuple[int, int, int], ...]) -> tuple[int | slice, ...]:
    out: list[int | slice] = []
    for item in key:
        if isinstance(item, tuple):
            start, stop, step = item
            out.append(slice(start, stop, step))
        else:
            out.append(int(item))
    return tuple(out)


def _reduce(fn: Any, arg: CvxLike, axis: Any) -> CvxLike:
    if axis is None:
        return fn(arg)
    return fn(arg, axis=int(axis))


def _call(call: IRCall, args: list[CvxLike]) -> CvxLike:
    atom = call.atom
    a0 = args[0] if args else None
    if atom == "sum":
        return _reduce(cp.sum, a0, _option(call, "axis"))
    if atom == "sum_squares":
        return cp.sum_squares(a0)
    if atom == "square":
        return cp.square(a0)
    if atom == "abs":
        return cp.abs(a0)
    if atom == "norm1":
        return cp.norm1(_flat(a0))
    if atom == "norm2":
        return cp.norm(_flat(a0), 2)
    if atom == "norm_inf":
        return cp.norm_inf(_flat(a0))
    if atom == "quad_form":
        P = _const_value(args[1])
        P = 0.5 * (P + P.T)  # only the symmetric part matters; CVXPY insists on symmetry
        return cp.quad_form(a0, cp.psd_wrap(P))
    if atom == "logistic":
        return cp.logistic(a0)
    if atom == "log_sum_exp":
        return _reduce(cp.log_sum_exp, a0, _option(call, "axis"))
    if atom == "exp":
        return cp.exp(a0)
    if atom == "log":
        return cp.log(a0)
    if atom == "sqrt":
        return cp.sqrt(a0)
    if atom == "pos":
        return cp.pos(a0)
    if atom == "neg":
        return cp.neg(a0)
    if atom == "maximum":
        return cp.maximum(*args)
    if atom == "minimum":
        return cp.minimum(*args)
    if atom == "max":
        return _reduce(cp.max, a0, _option(call, "axis"))
    if atom == "min":
        return _reduce(cp.min, a0, _option(call, "axis"))
    if atom == "huber":
        if len(args) > 1:
            M = float(_const_value(args[1]))
        else:
            M = float(_option(call, "M", 1.0))
        return cp.huber(a0, M)  # type: ignore[arg-type]  # CVXPY's stub says int; floats are fine
    if atom == "multiply":
        return cp.multiply(args[0], args[1])
    if atom == "dot":
        return cp.sum(cp.multiply(args[0], args[1]))
    if atom == "transpose":
        if isinstance(a0, cp.Expression):
            return cp.transpose(a0) if len(a0.shape) == 2 else a0
        return np.asarray(a0).T
    raise ValueError(f"unknown atom `{atom}`")


SUPPORTED_ATOMS: tuple[str, ...] = (
    "sum", "sum_squares", "square", "abs", "norm1", "norm2", "norm_inf", "quad_form", "logistic",
    "log_sum_exp", "exp", "log", "sqrt", "pos", "neg", "maximum", "minimum", "max", "min", "huber",
    "multiply", "dot", "transpose",
)  # fmt: skip


def stacked_views(x: cp.Expression, vars: Sequence[IRVar]) -> dict[str, cp.Expression]:
    """Views of each var (its IR shape, C order) into the stacked vector ``x``."""
    out: dict[str, cp.Expression] = {}
    for v in vars:
        if v.shape == ():
            out[v.name] = x[v.offset]
        elif len(v.shape) == 1:
            out[v.name] = x[v.offset : v.offset + v.size]
        else:
            out[v.name] = cp.reshape(x[v.offset : v.offset + v.size], v.shape, order="C")
    return out


def to_cvxpy(expr: IRExpr, vars: Mapping[str, CvxLike], params: Mapping[str, Any]) -> CvxLike:
    """Build the CVXPY expression for ``expr``.

    ``vars`` maps variable names to CVXPY expressions of the variable's shape (typically views
    into an object's stacked variable); ``params`` maps param names to numpy arrays (or
    ``cp.Parameter``s). Constant sub-trees come back as numpy arrays. The result's shape equals
    ``expr.shape``. Raises ``ValueError`` for an unknown node or atom, ``KeyError`` for an
    unknown name.
    """
    if isinstance(expr, IRConst):
        return _as_array(expr.value, expr.shape)
    if isinstance(expr, IRParamRef):
        value = params[expr.name]
        if _is_expr(value):
            return value
        return _as_array(value, expr.shape)
    if isinstance(expr, IRVarRef):
        return vars[expr.name]
    if isinstance(expr, IRNeg):
        return -to_cvxpy(expr.operand, vars, params)
    if isinstance(expr, IRBinary):
        left = to_cvxpy(expr.left, vars, params)
        right = to_cvxpy(expr.right, vars, params)
        if expr.op == "+":
            return left + right if _is_expr(left) or not _is_expr(right) else right + left
        if expr.op == "-":
            return left - right if _is_expr(left) or not _is_expr(right) else -right + left
        if expr.op == "*":
            return _mul(left, right, tuple(expr.left.shape), tuple(expr.right.shape))
        if expr.op == "/":
            return left / _const_value(right)
        if expr.op == "@":
            return _matmul(left, right)
        raise ValueError(f"unknown binary operator `{expr.op}`")
    if isinstance(expr, IRIndex):
        base = to_cvxpy(expr.base, vars, params)
        key = _index_key(expr.key)
        if _is_expr(base):
            return _reshape(base[key], tuple(expr.shape))
        return np.asarray(base)[key].reshape(expr.shape)
    if isinstance(expr, IRTranspose):
        inner = to_cvxpy(expr.operand, vars, params)
        if _is_expr(inner):
            return cp.transpose(inner) if len(inner.shape) == 2 else inner
        return np.asarray(inner).T
    if isinstance(expr, IRStack):
        elems = [to_cvxpy(e, vars, params) for e in expr.elements]
        if not any(_is_expr(e) for e in elems):
            return np.stack([np.asarray(e, dtype=np.float64) for e in elems]).reshape(expr.shape)
        rows = []
        for e in elems:
            e_expr = e if _is_expr(e) else cp.Constant(np.asarray(e, dtype=np.float64))
            size = int(np.prod(e_expr.shape, dtype=np.int64)) if e_expr.shape else 1
            rows.append(cp.reshape(e_expr, (1, size), order="C"))
        return _reshape(cp.vstack(rows), tuple(expr.shape))
    if isinstance(expr, IRCall):
        args = [to_cvxpy(a, vars, params) for a in expr.args]
        out = _call(expr, args)
        if _is_expr(out) and tuple(out.shape) != tuple(expr.shape):
            out = _reshape(out, tuple(expr.shape))
        return out
    raise ValueError(f"unknown IR node {type(expr).__name__}")


def solve_problem(problem: cp.Problem, warm: bool = True) -> tuple[str, int]:
    """Solve with Clarabel (an accurate interior point method) when installed; return the CVXPY
    status and how many "inaccurate" warnings the solve raised.

    CVXPY warns ``Solution may be inaccurate`` on stderr; here the warning is counted instead, so
    the caller can name the object in one catoptc warning (or drop it when the final result is
    verified by its residuals) rather than leak CVXPY's text into the user's terminal.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if "CLARABEL" in cp.installed_solvers():
                problem.solve(solver=cp.CLARABEL, warm_start=warm)
            else:  # pragma: no cover - depends on the environment
                problem.solve(warm_start=warm)
            status = str(problem.status)
        except cp.SolverError as exc:
            status = f"solver_error ({exc})"
    inaccurate = sum(1 for w in caught if "inaccurate" in str(w.message).lower())
    if status.endswith("_inaccurate"):
        inaccurate = max(inaccurate, 1)
    return status, inaccurate
