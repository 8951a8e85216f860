"""Numpy evaluation of IR expressions (objective values, constant folding, tests).

Every atom's numpy definition lives in its entry of the atom table
(:data:`catopt_dsl.check.atoms.ATOMS`, ``numeric``); the checker folds constant sub-expressions
with the same :func:`~catopt_dsl.check.atoms.apply_atom`, so a folded constant and an evaluated
one can never disagree.

Atom definitions worth stating (they follow cvxpy):

* ``huber(x, M)`` is ``x**2`` where ``|x| <= M`` and ``2*M*|x| - M**2`` elsewhere (default ``M = 1``);
* ``norm1`` / ``norm2`` / ``norm_inf`` treat their argument as one flat vector (``norm2`` of a
  matrix is the Frobenius norm);
* ``logistic(x) = log(1 + exp(x))`` and ``log_sum_exp`` are computed stably;
* ``pos(x) = max(x, 0)``, ``neg(x) = max(-x, 0)`` (both nonnegative);
* ``quad_form(x, P) = x' P x``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from catopt_dsl.check.atoms import apply_atom, apply_binary
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
