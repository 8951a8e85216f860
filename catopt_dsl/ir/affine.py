"""Exact affine coefficients of an IR expression: ``expr.flatten() == B @ x_stacked + b``.

Every node is mapped to a pair ``(A, c)`` over the *stacked* variable vector of its object (vars
flattened in C order and concatenated at their ``IRVar.offset``, see :mod:`catopt_dsl.ir.model`):
the node's value, flattened in C order, equals ``A @ x + c``. Pairs are combined node by node with
the exact linear algebra of each operation (no finite differences), so ``B`` and ``b`` are exact
up to floating-point rounding. Sub-expressions without variables are evaluated once with
:func:`catopt_dsl.ir.evaluate.evaluate` and carry ``A = None`` (an implicit zero matrix), which
keeps constant parts -- even nonlinear atoms of params -- cheap.

A node that is not affine in the variables (a product of two variable expressions, a nonlinear
atom of a variable, division by a variable) raises ``ValueError``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from catopt_dsl.ir.evaluate import evaluate, index_key
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

_Pair = tuple["np.ndarray | None", np.ndarray]  # (A or None for constant, c), both for the flattened value


def affine_coefficients(
    expr: IRExpr, vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(B, b)`` with ``B`` of shape ``(m, n_stacked)`` and ``b`` of shape ``(m,)``, ``m = expr.size``.

    Raises ``ValueError`` when ``expr`` is not affine in ``vars`` or mentions an unknown variable.
    """
    by_name = {v.name: v for v in vars}
    n = max((v.offset + v.size for v in vars), default=0)
    walker = _Affine(by_name, n, params)
    A, c = walker.pair(expr)
    m = c.size
    B = np.zeros((m, n)) if A is None else np.asarray(A, dtype=np.float64)
    return B, np.asarray(c, dtype=np.float64).reshape(m)


def field_coefficients(
    expr: IRExpr, vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray], m: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(B, b)`` of a morphism field's expression summed into a coupling of size ``m``: a scalar
    expression (a scalar default, say) is broadcast over every component."""
    B, b = affine_coefficients(expr, vars, params)
    if b.size == 1 and m > 1:
        b = np.full(m, float(b.reshape(-1)[0]))
        B = np.repeat(B.reshape(1, -1), m, axis=0)
    return B, b.reshape(-1)


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


class _Affine:
    def __init__(self, vars: Mapping[str, IRVar], n: int, params: Mapping[str, np.ndarray]) -> None:
        self.vars = vars
        self.n = n
        self.params = params

    def const(self, e: IRExpr) -> _Pair:
        value = evaluate(e, {}, self.params)
        return None, np.asarray(value, dtype=np.float64).reshape(-1)

    def has_var(self, e: IRExpr) -> bool:
        if isinstance(e, IRVarRef):
            return True
        if isinstance(e, (IRConst, IRParamRef)):
            return False
        if isinstance(e, (IRNeg, IRTranspose)):
            return self.has_var(e.operand)
        if isinstance(e, IRBinary):
            return self.has_var(e.left) or self.has_var(e.right)
        if isinstance(e, IRIndex):
            return self.has_var(e.base)
        if isinstance(e, IRStack):
            return any(self.has_var(x) for x in e.elements)
        if isinstance(e, IRCall):
            return any(self.has_var(x) for x in e.args)
        raise TypeError(f"not an IR expression: {type(e).__name__}")

    def pair(self, e: IRExpr) -> _Pair:
        if not self.has_var(e):
            return self.const(e)
        if isinstance(e, IRVarRef):
            v = self.vars.get(e.name)
            if v is None:
                raise ValueError(f"variable `{e.name}` is not among the stacked variables")
            if tuple(v.shape) != tuple(e.shape):
                raise ValueError(f"variable `{e.name}` has shape {v.shape}, the expression uses {e.shape}")
            unit = np.zeros((v.size, self.n))
            unit[np.arange(v.size), v.offset + np.arange(v.size)] = 1.0
            return unit, np.zeros(v.size)
        if isinstance(e, IRNeg):
            A, c = self.pair(e.operand)
            return _neg(A), -c
        if isinstance(e, IRBinary):
            return self.binary(e)
        if isinstance(e, IRIndex):
            A, c = self.pair(e.base)
            sel = np.arange(c.size).reshape(e.base.shape)[index_key(e.key)].reshape(-1)
            return (None if A is None else A[sel]), c[sel]
        if isinstance(e, IRTranspose):
            A, c = self.pair(e.operand)
            perm = np.arange(c.size).reshape(e.operand.shape).T.reshape(-1)
            return (None if A is None else A[perm]), c[perm]
        if isinstance(e, IRStack):
            pairs = [self.broadcast(self.pair(x), x.shape, _size(x.shape)) for x in e.elements]
            return (
                np.vstack([self.dense(A, c.size) for A, c in pairs]),
                np.concatenate([c for _, c in pairs]),
            )
        if isinstance(e, IRCall):
            return self.call(e)
        raise TypeError(f"not an IR expression: {type(e).__name__}")  # pragma: no cover

    def dense(self, A: np.ndarray | None, m: int) -> np.ndarray:
        return np.zeros((m, self.n)) if A is None else A

    def broadcast(self, p: _Pair, shape: tuple[int, ...], m: int) -> _Pair:
        A, c = p
        if c.size == m:
            return p
        if c.size != 1:
            raise ValueError(f"cannot broadcast {c.size} entries to {m}")
        return (None if A is None else np.repeat(A, m, axis=0)), np.repeat(c, m)

    def binary(self, e: IRBinary) -> _Pair:
        m = _size(e.shape)
        if e.op in ("+", "-"):
            Al, cl = self.broadcast(self.pair(e.left), e.shape, m)
            Ar, cr = self.broadcast(self.pair(e.right), e.shape, m)
            if e.op == "-":
                Ar, cr = _neg(Ar), -cr
            return _add(Al, Ar), cl + cr
        if e.op == "*":
            lv, rv = self.has_var(e.left), self.has_var(e.right)
            if lv and rv:
                raise ValueError("product of two expressions with variables is not affine")
            k_expr, x_expr = (e.right, e.left) if lv else (e.left, e.right)
            k = np.asarray(evaluate(k_expr, {}, self.params), dtype=np.float64).reshape(-1)
            A, c = self.broadcast(self.pair(x_expr), e.shape, m)
            k = np.repeat(k, m) if k.size == 1 else k
            return _scale_rows(A, k), k * c
        if e.op == "/":
            if self.has_var(e.right):
                raise ValueError("division by an expression with variables is not affine")
            d = float(np.asarray(evaluate(e.right, {}, self.params)))
            A, c = self.pair(e.left)
            return (None if A is None else A / d), c / d
        if e.op == "@":
            lv, rv = self.has_var(e.left), self.has_var(e.right)
            if lv and rv:
                raise ValueError("matrix product of two expressions with variables is not affine")
            if rv:
                L = np.asarray(evaluate(e.left, {}, self.params), dtype=np.float64)
                A, c = self.pair(e.right)
                M = _left_operator(L, e.right.shape)
            else:
                R = np.asarray(evaluate(e.right, {}, self.params), dtype=np.float64)
                A, c = self.pair(e.left)
                M = _right_operator(R, e.left.shape)
            return (None if A is None else M @ A), M @ c
        raise ValueError(f"unknown operator `{e.op}`")

    def call(self, e: IRCall) -> _Pair:
        opts = dict(e.options)
        if e.atom in ("sum", "mean"):
            (x,) = e.args
            A, c = self.pair(x)
            axis = opts.get("axis")
            if axis is None:
                R = np.ones((1, c.size))
                if e.atom == "mean":
                    R /= c.size
            else:
                R = _axis_sum_operator(x.shape, int(axis))
            return (None if A is None else R @ A), R @ c
        if e.atom == "multiply":
            return self.binary(IRBinary("*", e.args[0], e.args[1], e.shape))
        if e.atom == "dot":
            return self.binary(IRBinary("@", e.args[0], e.args[1], e.shape))
        if e.atom == "transpose":
            (x,) = e.args
            if len(x.shape) < 2:
                return self.pair(x)
            return self.pair(IRTranspose(x, e.shape))
        raise ValueError(f"`{e.atom}` of an expression with variables is not affine")


def _neg(A: np.ndarray | None) -> np.ndarray | None:
    return None if A is None else -A


def _add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _scale_rows(A: np.ndarray | None, k: np.ndarray) -> np.ndarray | None:
    return None if A is None else A * k[:, None]


def _left_operator(L: np.ndarray, rshape: tuple[int, ...]) -> np.ndarray:
    """Matrix of ``X -> L @ X`` on C-order flattened ``X`` of shape ``rshape``."""
    L2 = L if L.ndim == 2 else L[None, :]
    if len(rshape) == 1:
        return L2
    k = rshape[1]
    return np.kron(L2, np.eye(k))


def _right_operator(R: np.ndarray, lshape: tuple[int, ...]) -> np.ndarray:
    """Matrix of ``X -> X @ R`` on C-order flattened ``X`` of shape ``lshape``."""
    # (X @ R)[i, j] = sum_l X[i, l] R[l, j]  ->  kron(I_m, R.T) for a matrix X.
    RT = R.T if R.ndim == 2 else R[None, :]
    if len(lshape) == 1:
        return RT
    return np.kron(np.eye(lshape[0]), RT)


def _axis_sum_operator(shape: tuple[int, ...], axis: int) -> np.ndarray:
    size = _size(shape)
    out_shape = shape[:axis] + shape[axis + 1 :]
    out_idx = np.arange(_size(out_shape)).reshape(out_shape)
    target = np.broadcast_to(np.expand_dims(out_idx, axis), shape).reshape(-1)
    R = np.zeros((_size(out_shape), size))
    R[target, np.arange(size)] = 1.0
    return R
