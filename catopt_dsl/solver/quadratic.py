"""Fast-path eligibility: exact affine and quadratic forms read off the IR tree.

An object qualifies for the closed-form x-update when its objective is

    f(x) = 1/2 x'Px + q'x + r      (P symmetric PSD, x the stacked variable vector)

built only from: affine scalar terms, ``sum_squares(affine)``, ``sum(square(affine))``,
``square(affine scalar)``, ``quad_form(affine, P const)``, sums/differences of such terms and
multiplication or division by constant scalars, and its constraints are all linear equalities
``affine == affine``. Anything else (an unknown atom, a non-constant product, an inequality)
makes the object ineligible and it goes through CVXPY.

Affine forms are propagated exactly per node as ``(A, c)`` with ``A.shape == node.shape + (n,)``
and ``c.shape == node.shape`` (so ``expr == A @ x + c`` along the last axis); no finite differences.
This module is private to the solver (the IR's public ``affine_coefficients`` lives in
``catopt_dsl.ir.affine``); keeping our own copy keeps the solver independent of the checker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from catopt_dsl.ir.model import (
    IRBinary,
    IRCall,
    IRConst,
    IRConstraint,
    IRExpr,
    IRIndex,
    IRNeg,
    IRParamRef,
    IRStack,
    IRTranspose,
    IRVar,
    IRVarRef,
)

__all__ = [
    "RECESSION_TOL",
    "Affine",
    "NotEligible",
    "Quadratic",
    "affine_constraints",
    "affine_form",
    "linear_equalities",
    "quadratic_form",
    "recession_slope",
]

#: relative tolerance of recession checks (projection distance, inequality rows, consensus rows)
RECESSION_TOL = 1e-6


class NotEligible(ValueError):
    """The expression is not of the required (affine / quadratic) form."""


@dataclass(frozen=True, eq=False)
class Affine:
    A: np.ndarray  # shape + (n,)
    c: np.ndarray  # shape

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.c.shape)

    def is_const(self) -> bool:
        return not np.any(self.A)

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.A.shape[-1]
        return self.A.reshape(-1, n), self.c.reshape(-1)


@dataclass(frozen=True, eq=False)
class Quadratic:
    """``1/2 x'Px + q'x + r``."""

    P: np.ndarray
    q: np.ndarray
    r: float

    def __add__(self, other: "Quadratic") -> "Quadratic":
        return Quadratic(self.P + other.P, self.q + other.q, self.r + other.r)

    def scale(self, k: float) -> "Quadratic":
        return Quadratic(k * self.P, k * self.q, k * self.r)

    def value(self, x: np.ndarray) -> float:
        # overflow gives inf (the coordinator names the object); numpy need not warn about it too
        with np.errstate(over="ignore", invalid="ignore"):
            return float(0.5 * x @ (self.P @ x) + self.q @ x + self.r)


def _const_of(expr: IRExpr, vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]) -> np.ndarray:
    aff = affine_form(expr, vars, params)
    if not aff.is_const():
        raise NotEligible("expected a constant")
    return aff.c


def _broadcast(a: Affine, shape: tuple[int, ...]) -> Affine:
    if a.shape == shape:
        return a
    n = a.A.shape[-1]
    return Affine(np.broadcast_to(a.A, shape + (n,)).copy(), np.broadcast_to(a.c, shape).copy())


def _option(call: IRCall, name: str, default: Any = None) -> Any:
    for key, value in call.options:
        if key == name:
            return value
    return default


def affine_form(expr: IRExpr, vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]) -> Affine:
    """Exact ``(A, c)`` of an affine IR expression over the stacked vector of ``vars``."""
    n = sum(v.size for v in vars)
    shape = tuple(expr.shape)
    if isinstance(expr, IRConst):
        c = np.asarray(expr.value, dtype=np.float64).reshape(shape)
        return Affine(np.zeros(shape + (n,)), c)
    if isinstance(expr, IRParamRef):
        c = np.asarray(params[expr.name], dtype=np.float64).reshape(shape)
        return Affine(np.zeros(shape + (n,)), c)
    if isinstance(expr, IRVarRef):
        for v in vars:
            if v.name == expr.name:
                A = np.zeros((v.size, n))
                A[np.arange(v.size), v.offset + np.arange(v.size)] = 1.0
                return Affine(A.reshape(shape + (n,)), np.zeros(shape))
        raise NotEligible(f"unknown variable `{expr.name}`")
    if isinstance(expr, IRNeg):
        a = affine_form(expr.operand, vars, params)
        return Affine(-a.A, -a.c)
    if isinstance(expr, IRIndex):
        a = affine_form(expr.base, vars, params)
        key = tuple(slice(*k) if isinstance(k, tuple) else int(k) for k in expr.key)
        return Affine(a.A[key].reshape(shape + (n,)), a.c[key].reshape(shape))
    if isinstance(expr, IRTranspose):
        a = affine_form(expr.operand, vars, params)
        if a.c.ndim == 2:
            return Affine(a.A.transpose(1, 0, 2).copy(), a.c.T.copy())
        return a
    if isinstance(expr, IRStack):
        parts = [affine_form(e, vars, params) for e in expr.elements]
        A = np.stack([p.A for p in parts]).reshape(shape + (n,))
        c = np.stack([p.c for p in parts]).reshape(shape)
        return Affine(A, c)
    if isinstance(expr, IRBinary):
        left = affine_form(expr.left, vars, params)
        right = affine_form(expr.right, vars, params)
        if expr.op in ("+", "-"):
            left, right = _broadcast(left, shape), _broadcast(right, shape)
            sign = 1.0 if expr.op == "+" else -1.0
            return Affine(left.A + sign * right.A, left.c + sign * right.c)
        if expr.op == "/":
            if not right.is_const():
                raise NotEligible("division by a non-constant")
            return Affine(left.A / right.c[..., None], left.c / right.c)
        if expr.op == "*":
            return _elementwise_product(left, right, shape)
        if expr.op == "@":
            return _matmul(left, right, shape)
        raise NotEligible(f"operator `{expr.op}`")
    if isinstance(expr, IRCall):
        if expr.atom == "sum":
            a = affine_form(expr.args[0], vars, params)
            axis = _option(expr, "axis")
            if axis is None:
                return Affine(a.A.reshape(-1, n).sum(axis=0), np.asarray(a.c.sum()))
            return Affine(a.A.sum(axis=int(axis)), a.c.sum(axis=int(axis)))
        if expr.atom == "multiply":
            left = affine_form(expr.args[0], vars, params)
            right = affine_form(expr.args[1], vars, params)
            return _elementwise_product(left, right, shape)
        if expr.atom == "dot":
            left = affine_form(expr.args[0], vars, params)
            right = affine_form(expr.args[1], vars, params)
            prod = _elementwise_product(left, right, tuple(np.broadcast_shapes(left.shape, right.shape)))
            return Affine(prod.A.reshape(-1, n).sum(axis=0), np.asarray(prod.c.sum()))
        if expr.atom == "transpose":
            a = affine_form(expr.args[0], vars, params)
            if a.c.ndim == 2:
                return Affine(a.A.transpose(1, 0, 2).copy(), a.c.T.copy())
            return a
        raise NotEligible(f"atom `{expr.atom}` is not affine")
    raise NotEligible(f"node {type(expr).__name__}")


def _elementwise_product(left: Affine, right: Affine, shape: tuple[int, ...]) -> Affine:
    if left.is_const():
        k, a = left.c, right
    elif right.is_const():
        k, a = right.c, left
    else:
        raise NotEligible("product of two non-constant expressions")
    a = _broadcast(a, shape)
    k = np.broadcast_to(k, shape)
    return Affine(k[..., None] * a.A, k * a.c)


def _matmul(left: Affine, right: Affine, shape: tuple[int, ...]) -> Affine:
    if left.is_const():
        M = left.c
        # (.., l) @ (l, ..): contract M's last axis with the affine's first axis.
        A = np.tensordot(M, right.A, axes=([M.ndim - 1], [0]))
        c = np.tensordot(M, right.c, axes=([M.ndim - 1], [0]))
        return Affine(np.asarray(A).reshape(shape + (A.shape[-1],)), np.asarray(c).reshape(shape))
    if right.is_const():
        M = right.c
        n = left.A.shape[-1]
        # X (.., l) @ M (l, ..): contract X's last (non-x) axis with M's first axis.
        ax = left.c.ndim - 1
        A = np.tensordot(left.A, M, axes=([ax], [0]))  # X-shape-minus-last + (n,) + M-rest
        A = np.moveaxis(A, ax, -1)
        c = np.tensordot(left.c, M, axes=([ax], [0]))
        return Affine(np.asarray(A).reshape(shape + (n,)), np.asarray(c).reshape(shape))
    raise NotEligible("product of two non-constant expressions")


def _scalar_const(expr: IRExpr, vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]) -> float | None:
    if tuple(expr.shape) != ():
        return None
    try:
        return float(_const_of(expr, vars, params))
    except NotEligible:
        return None


def quadratic_form(expr: IRExpr, vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]) -> Quadratic:
    """Exact ``(P, q, r)`` of a scalar quadratic IR expression; raises NotEligible otherwise.

    Does not check convexity; the caller checks that P is PSD.
    """
    n = sum(v.size for v in vars)
    if tuple(expr.shape) != ():
        raise NotEligible("objective is not scalar")
    # Affine scalars (constants, linear terms) first: the cheapest and most common leaf.
    try:
        aff = affine_form(expr, vars, params)
        A, c = aff.flat()
        return Quadratic(np.zeros((n, n)), A[0].copy(), float(c[0]))
    except NotEligible:
        pass
    if isinstance(expr, IRNeg):
        return quadratic_form(expr.operand, vars, params).scale(-1.0)
    if isinstance(expr, IRBinary):
        if expr.op in ("+", "-"):
            left = quadratic_form(expr.left, vars, params)
            right = quadratic_form(expr.right, vars, params)
            return left + (right if expr.op == "+" else right.scale(-1.0))
        if expr.op == "*":
            k = _scalar_const(expr.left, vars, params)
            if k is not None:
                return quadratic_form(expr.right, vars, params).scale(k)
            k = _scalar_const(expr.right, vars, params)
            if k is not None:
                return quadratic_form(expr.left, vars, params).scale(k)
            raise NotEligible("product of two non-constant expressions")
        if expr.op == "/":
            k = _scalar_const(expr.right, vars, params)
            if k is None or k == 0.0:
                raise NotEligible("division by a non-constant")
            return quadratic_form(expr.left, vars, params).scale(1.0 / k)
        raise NotEligible(f"operator `{expr.op}`")
    if isinstance(expr, IRCall):
        atom = expr.atom
        if atom == "sum_squares" or (atom == "square" and tuple(expr.args[0].shape) == ()):
            return _sum_squares(affine_form(expr.args[0], vars, params))
        if atom == "sum" and _option(expr, "axis") is None:
            inner = expr.args[0]
            if isinstance(inner, IRCall) and inner.atom == "square":
                return _sum_squares(affine_form(inner.args[0], vars, params))
            raise NotEligible("sum of a non-affine, non-square expression")
        if atom == "quad_form":
            a = affine_form(expr.args[0], vars, params)
            M = np.asarray(_const_of(expr.args[1], vars, params), dtype=np.float64)
            M = 0.5 * (M + M.T)
            A, c = a.flat()
            return Quadratic(2.0 * A.T @ M @ A, 2.0 * A.T @ (M @ c), float(c @ M @ c))
        raise NotEligible(f"atom `{atom}` is not quadratic")
    raise NotEligible(f"node {type(expr).__name__}")


def _sum_squares(a: Affine) -> Quadratic:
    A, c = a.flat()
    with np.errstate(over="ignore", invalid="ignore"):  # huge data: inf, reported downstream
        return Quadratic(2.0 * A.T @ A, 2.0 * A.T @ c, float(c @ c))


def linear_equalities(
    constraints: tuple[IRConstraint, ...], vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(G, h)`` with every constraint equivalent to ``G x == h``; NotEligible for anything else."""
    n = sum(v.size for v in vars)
    rows_G: list[np.ndarray] = [np.zeros((0, n))]
    rows_h: list[np.ndarray] = [np.zeros(0)]
    for con in constraints:
        if con.op != "==":
            raise NotEligible("inequality constraint")
        lhs = affine_form(con.lhs, vars, params)
        rhs = affine_form(con.rhs, vars, params)
        shape = tuple(np.broadcast_shapes(lhs.shape, rhs.shape))
        lhs, rhs = _broadcast(lhs, shape), _broadcast(rhs, shape)
        A = (lhs.A - rhs.A).reshape(-1, n)
        c = (lhs.c - rhs.c).reshape(-1)
        rows_G.append(A)
        rows_h.append(-c)
    return np.vstack(rows_G), np.concatenate(rows_h)


def split_constraints(
    constraints: tuple[IRConstraint, ...], vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(G, h, lo, hi)``: linear equalities ``G x == h`` and coordinate bounds ``lo <= x <= hi``.

    An inequality is accepted only when every row of it involves exactly one coordinate (``x >= 0``,
    ``x <= demand``, ``2 * x[1] <= 3``): those are bounds, and with a separable quadratic objective
    the prox step is a clip. Anything else raises NotEligible.
    """
    n = sum(v.size for v in vars)
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)
    equalities: list[IRConstraint] = []
    for con in constraints:
        if con.op == "==":
            equalities.append(con)
            continue
        lhs = affine_form(con.lhs, vars, params)
        rhs = affine_form(con.rhs, vars, params)
        shape = tuple(np.broadcast_shapes(lhs.shape, rhs.shape))
        lhs, rhs = _broadcast(lhs, shape), _broadcast(rhs, shape)
        # rows: D x (op) e, with D = A_l - A_r and e = c_r - c_l
        D = (lhs.A - rhs.A).reshape(-1, n)
        e = (rhs.c - lhs.c).reshape(-1)
        if con.op == ">=":
            D, e = -D, -e  # now D x <= e
        for row, bound in zip(D, e):
            nz = np.flatnonzero(row)
            if nz.size == 0:
                if bound < 0:
                    raise NotEligible("a constant constraint that does not hold")
                continue
            if nz.size != 1:
                raise NotEligible("an inequality over several coordinates")
            j, coef = int(nz[0]), float(row[nz[0]])
            if coef > 0:
                hi[j] = min(hi[j], bound / coef)
            else:
                lo[j] = max(lo[j], bound / coef)
    G, h = linear_equalities(tuple(equalities), vars, params)
    return G, h, lo, hi


def affine_constraints(
    constraints: tuple[IRConstraint, ...], vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(A_eq, b_eq, A_in, b_in)`` with the constraints equivalent to ``A_eq x == b_eq, A_in x <= b_in``.

    Every constraint must be affine on both sides (NotEligible otherwise). Rows whose coefficients
    are all zero are kept: a constant constraint that fails is the caller's to notice.
    """
    n = sum(v.size for v in vars)
    eq_A: list[np.ndarray] = [np.zeros((0, n))]
    eq_b: list[np.ndarray] = [np.zeros(0)]
    in_A: list[np.ndarray] = [np.zeros((0, n))]
    in_b: list[np.ndarray] = [np.zeros(0)]
    for con in constraints:
        lhs = affine_form(con.lhs, vars, params)
        rhs = affine_form(con.rhs, vars, params)
        shape = tuple(np.broadcast_shapes(lhs.shape, rhs.shape))
        lhs, rhs = _broadcast(lhs, shape), _broadcast(rhs, shape)
        D = (lhs.A - rhs.A).reshape(-1, n)
        e = (rhs.c - lhs.c).reshape(-1)
        if con.op == "==":
            eq_A.append(D)
            eq_b.append(e)
        elif con.op == "<=":
            in_A.append(D)
            in_b.append(e)
        else:
            in_A.append(-D)
            in_b.append(-e)
    return np.vstack(eq_A), np.concatenate(eq_b), np.vstack(in_A), np.concatenate(in_b)


def _null_space(K: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis of null(K) (columns); None when K has no rows (everything is null)."""
    if K.shape[0] == 0:
        return None
    _, s, vt = np.linalg.svd(K, full_matrices=True)
    top = float(s.max(initial=0.0))
    rank = int(np.sum(s > 1e-12 * max(top, 1e-300))) if top > 0.0 else 0
    return vt[rank:].T


def recession_slope(
    P: np.ndarray, q: np.ndarray, A_eq: np.ndarray, A_in: np.ndarray, d: np.ndarray
) -> float | None:
    """The slope ``q'd^`` of ``1/2 x'Px + q'x`` along d^, the projection of d onto null([P; A_eq]),
    when d^ is a recession direction (``catopt_dsl.solver.certificate`` gives the rule); None otherwise."""
    d = np.asarray(d, dtype=np.float64)
    size = float(np.abs(d).max(initial=0.0))
    if size == 0.0:
        return 0.0
    N = _null_space(np.vstack([P, A_eq]))
    d_hat = d if N is None else N @ (N.T @ d)
    if float(np.abs(d_hat - d).max(initial=0.0)) > RECESSION_TOL * size:
        return None
    if A_in.shape[0]:
        scale = np.abs(A_in).max(axis=1) * size
        if np.any(A_in @ d_hat > RECESSION_TOL * np.maximum(scale, 1e-300)):
            return None
    return float(q @ d_hat)
