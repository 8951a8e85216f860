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

from typing import Any, Mapping

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
