"""Numpy evaluation of IR expressions (objective values, constant folding, tests).

:func:`apply_atom` is the single numpy definition of every atom; the checker folds constant
sub-expressions with it, so a folded constant and an evaluated one can never disagree.

Atom definitions worth stating (they follow cvxpy):

* ``huber(x, M)`` is ``x**2`` where ``|x| <= M`` and ``2*M*|x| - M**2`` elsewhere (default ``M = 1``);
* ``norm1`` / ``norm2`` / ``norm_inf`` treat their argument as one flat vector (``norm2`` of a
  matrix is the Frobenius norm);
* ``logistic(x) = log(1 + exp(x))`` and ``log_sum_exp`` are computed stably;
* ``pos(x) = max(x, 0)``, ``neg(x) = max(-x, 0)`` (both nonnegative);
* ``quad_form(x, P) = x' P x``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

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
    IRVarRef,
)


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


# name -> callable(*arg_values, **options). Every atom of `catopt_dsl.check.atoms.ATOMS` is here.
ATOM_IMPLS: dict[str, Callable[..., np.ndarray]] = {
    "sum": lambda x, axis=None: np.sum(x, axis=axis),
    "mean": lambda x: np.mean(_f(x)),
    "sum_squares": lambda x: np.sum(_f(x) ** 2),
    "square": lambda x: _f(x) ** 2,
    "abs": lambda x: np.abs(x),
    "norm1": lambda x: np.sum(np.abs(_f(x))),
    "norm2": lambda x: np.sqrt(np.sum(_f(x) ** 2)),
    "norm_inf": lambda x: np.max(np.abs(_f(x))),
    "quad_form": lambda x, P: _f(x) @ _f(P) @ _f(x),
    "logistic": lambda x: np.logaddexp(0.0, _f(x)),
    "log_sum_exp": _log_sum_exp,
    "exp": lambda x: np.exp(_f(x)),
    "log": lambda x: np.log(_f(x)),
    "sqrt": lambda x: np.sqrt(_f(x)),
    "pos": lambda x: np.maximum(_f(x), 0.0),
    "neg": lambda x: np.maximum(-_f(x), 0.0),
    "maximum": _fold(np.maximum),
    "minimum": _fold(np.minimum),
    "max": lambda x: np.max(x),
    "min": lambda x: np.min(x),
    "huber": _huber,
    "multiply": lambda a, b: np.multiply(a, b),
    "dot": lambda a, b: np.dot(a, b),
    "transpose": lambda x: np.transpose(x),
}


def apply_atom(
    name: str, args: tuple[np.ndarray, ...] | list[np.ndarray], options: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Evaluate atom ``name`` on numpy values (numpy floating-point warnings are silenced)."""
    fn = ATOM_IMPLS.get(name)
    if fn is None:
        raise ValueError(f"unknown atom `{name}`")
    with np.errstate(all="ignore"):
        return np.asarray(fn(*args, **dict(options or {})))


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


def index_key(key: tuple[int | tuple[int, int, int], ...]) -> tuple[int | slice, ...]:
    """IR index key -> numpy key. Triples are normalised ``(start, stop, step)`` with ``step >= 1``."""
    return tuple(k if isinstance(k, int) else slice(k[0], k[1], k[2]) for k in key)


def evaluate(expr: IRExpr, vars: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Evaluate ``expr`` with numpy, taking variable values from ``vars`` and params from ``params``.

    Raises ``KeyError`` for a variable or param that is not supplied and ``ValueError`` when a
    value's shape differs from the one the IR node declares.
    """

    def ev(e: IRExpr) -> np.ndarray:
        if isinstance(e, IRConst):
            return np.asarray(e.value)
        if isinstance(e, IRParamRef):
            return _shaped(params[e.name], e.shape, "param", e.name)
        if isinstance(e, IRVarRef):
            return _shaped(vars[e.name], e.shape, "variable", e.name)
        if isinstance(e, IRNeg):
            return np.asarray(-ev(e.operand))
        if isinstance(e, IRBinary):
            return apply_binary(e.op, ev(e.left), ev(e.right))
        if isinstance(e, IRIndex):
            return np.asarray(ev(e.base)[index_key(e.key)])
        if isinstance(e, IRTranspose):
            return np.asarray(np.transpose(ev(e.operand)))
        if isinstance(e, IRStack):
            return np.asarray(np.stack([np.broadcast_to(ev(x), x.shape) for x in e.elements]))
        if isinstance(e, IRCall):
            return apply_atom(e.atom, tuple(ev(a) for a in e.args), dict(e.options))
        raise TypeError(f"not an IR expression: {type(e).__name__}")

    return ev(expr)


def _shaped(value: Any, shape: tuple[int, ...], kind: str, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != tuple(shape):
        if arr.size == int(np.prod(shape, dtype=np.int64)) and arr.ndim <= 1:
            # Accept flat vectors for matrix variables (the solver keeps x stacked and flat).
            return arr.reshape(shape)
        raise ValueError(f"{kind} `{name}` has shape {arr.shape}, expected {tuple(shape)}")
    return arr


#: atoms that act entry by entry (a leading batch axis passes through them unchanged)
ELEMENTWISE_ATOMS: frozenset[str] = frozenset(
    {"square", "abs", "logistic", "exp", "log", "sqrt", "pos", "neg", "huber", "maximum", "minimum", "multiply"}
)


def evaluate_batched(
    expr: IRExpr, params: Sequence[Mapping[str, np.ndarray]], stacked: Mapping[str, np.ndarray] | None = None
) -> np.ndarray:
    """Evaluate a variable-free ``expr`` for a batch of param sets at once: ``(B, *expr.shape)``.

    ``params[b]`` holds member b's params; ``stacked`` (optional) the same params stacked along a
    leading axis (computed here when absent). Every node gets the batch axis in front; atoms that
    reduce are evaluated member by member with :func:`apply_atom` (the one numpy definition of an
    atom), so the batched and the single evaluation cannot disagree.
    """
    count = len(params)
    if stacked is None:
        stacked = {}

    def param(name: str, shape: tuple[int, ...]) -> np.ndarray:
        found = stacked.get(name)
        if found is None:
            found = np.stack([np.asarray(p[name]) for p in params]) if count else np.zeros((0, *shape))
            stacked[name] = found  # type: ignore[index]
        return _shaped_batch(found, shape, count, name)

    def lift(v: np.ndarray, ndim: int) -> np.ndarray:
        """A batched value of a lower rank, with unit axes after the batch axis (numpy aligns
        trailing axes, and IR broadcasting is scalar-with-anything)."""
        return v.reshape(v.shape[:1] + (1,) * (ndim - (v.ndim - 1)) + v.shape[1:]) if v.ndim - 1 < ndim else v

    def ev(e: IRExpr) -> np.ndarray:
        if isinstance(e, IRConst):
            return np.broadcast_to(np.asarray(e.value), (count, *np.shape(e.value)))
        if isinstance(e, IRParamRef):
            return param(e.name, tuple(e.shape))
        if isinstance(e, IRVarRef):
            raise KeyError(e.name)
        if isinstance(e, IRNeg):
            return np.asarray(-ev(e.operand))
        if isinstance(e, IRBinary):
            left, right = ev(e.left), ev(e.right)
            if e.op == "@":
                return _batched_matmul(left, right, tuple(e.left.shape), tuple(e.right.shape))
            nd = max(left.ndim, right.ndim) - 1
            return apply_binary(e.op, lift(left, nd), lift(right, nd))
        if isinstance(e, IRIndex):
            return np.asarray(ev(e.base)[(slice(None),) + index_key(e.key)])
        if isinstance(e, IRTranspose):
            return np.asarray(np.swapaxes(ev(e.operand), -1, -2))
        if isinstance(e, IRStack):
            parts = [np.broadcast_to(lift(ev(x), len(x.shape)), (count, *x.shape)) for x in e.elements]
            return np.stack(parts, axis=1)
        if isinstance(e, IRCall):
            args = [ev(a) for a in e.args]
            opts = dict(e.options)
            if e.atom in ELEMENTWISE_ATOMS:
                nd = max(a.ndim for a in args) - 1
                return apply_atom(e.atom, tuple(lift(a, nd) for a in args), opts)
            return np.stack([apply_atom(e.atom, tuple(a[b] for a in args), opts) for b in range(count)]).reshape(
                count, *e.shape
            )
        raise TypeError(f"not an IR expression: {type(e).__name__}")

    return np.asarray(ev(expr)).reshape(count, *expr.shape)


def _shaped_batch(value: np.ndarray, shape: tuple[int, ...], count: int, name: str) -> np.ndarray:
    if value.shape[1:] != tuple(shape):
        if value.ndim <= 2 and value.size == count * int(np.prod(shape, dtype=np.int64)):
            return value.reshape(count, *shape)
        raise ValueError(f"param `{name}` has shape {value.shape[1:]}, expected {tuple(shape)}")
    return value


def _batched_matmul(left: np.ndarray, right: np.ndarray, ls: tuple[int, ...], rs: tuple[int, ...]) -> np.ndarray:
    """``left @ right`` member by member (leading batch axis on both)."""
    if len(ls) == 1 and len(rs) == 1:
        return np.einsum("bi,bi->b", left, right)
    if len(ls) == 1:
        return np.einsum("bi,bij->bj", left, right)
    if len(rs) == 1:
        return np.einsum("bij,bj->bi", left, right)
    return np.matmul(left, right)
