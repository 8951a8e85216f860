"""Newton x-updates for smooth objectives: ``newton`` (linear equalities) and ``coord`` (separable,
with bounds).

The objective of a member is the analysis' form ``1/2 x'Px + q'x + sum_k terms_k`` with smooth
terms (``logistic``, ``huber``, ``exp``, ``log``, ``sqrt``, ``log_sum_exp``); their gradients and
Hessians are exact, from the calculus table (``catopt_dsl.ir.calculus``):

    grad = P x + q + sum_k A_k' (w_k * phi'(A_k x + b_k)) + rho M'(M x - d)
    hess = P + sum_k A_k' diag(w_k * phi''(A_k x + b_k)) A_k + rho M'M

``newton``: damped Newton with the equalities ``G x = h`` in the KKT system (Boyd and
Vandenberghe, *Convex Optimization*, section 10.2: the warm start is first projected onto the
equalities, and every step then keeps them), an Armijo backtracking line search on the objective
that also keeps x where it is finite (``log``'s domain; along the step every term's argument is
``U + t A dx``, so a trial costs no matrix product), all members at once (one batched
``numpy.linalg.solve`` per iteration over the members still running). Warm started from
the previous outer iteration, it takes two to four iterations once the outer iterate settles.
Why Newton and not a first-order inner method: the Hessians are small (n is a member's variable
count) and exact, so each x-update is solved to rounding in a handful of batched solves; the
outer ADMM then never sees an inexact prox from these objects.

``coord``: when the objective, the rows (``M'M`` diagonal) and the bounds all split by coordinate,
each coordinate is a 1-D strictly convex problem on an interval: safeguarded Newton on its
derivative (bisection when a Newton step leaves the bracket), vectorised over every coordinate
of every member; a bound is the answer when the derivative there points outside.

A member is solved when its KKT residual is within ``NEWTON_TOL`` relative to the size of its
gradient terms; a member that does not get there in ``NEWTON_MAX_ITER`` iterations (a local
problem unbounded below, or a data overflow) fails the step and CVXPY decides it.
"""

from __future__ import annotations

import numpy as np

from catopt_dsl.ir.analysis import term_values
from catopt_dsl.ir.calculus import CALCULUS, elementwise_parts
from catopt_dsl.solver.local.base import Accuracy, BatchData, BatchSolver, StepResult

__all__ = ["NEWTON_MAX_ITER", "NEWTON_TOL", "CoordSolver", "NewtonSolver"]

NEWTON_TOL = 1e-10
NEWTON_MAX_ITER = 60
COORD_MAX_ITER = 200
_ALPHA, _BETA = 0.01, 0.5  # Armijo fraction and backtracking factor
_MAX_BACKTRACK = 60


def _mv(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Batched matrix-vector product ``A @ x`` (``(k, m, n)``, ``(k, n)``) through BLAS."""
    return np.matmul(A, x[:, :, None])[:, :, 0]


def _mtv(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Batched ``A' @ y``."""
    return np.matmul(y[:, None, :], A)[:, 0, :]


def _take(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``arr[rows]``, without the copy when ``rows`` are all of them in order."""
    if rows.size == arr.shape[0] and np.array_equal(rows, np.arange(rows.size)):
        return arr
    return arr[rows]


class NewtonSolver(BatchSolver):
    """Smooth terms with linear equalities: batched damped Newton."""

    method = "newton"

    def __init__(self, data: BatchData, accuracy: Accuracy | None = None) -> None:
        super().__init__(data, accuracy)
        g = data.group
        assert g.P is not None and g.q is not None and g.A_eq is not None and g.b_eq is not None
        self.P, self.q = data.take(g.P), data.take(g.q)
        self.G, self.h = data.take(g.A_eq), data.take(g.b_eq)
        self.terms = data.terms()
        self.MtM = data.MtM()
        finite = np.isfinite(self.P).all(axis=(1, 2)) & np.isfinite(self.q).all(axis=1)
        for t in self.terms:
            finite &= np.isfinite(t.A).all(axis=(1, 2)) & np.isfinite(t.b).all(axis=1) & np.isfinite(t.w).all(axis=1)
        self.reject(~finite, "non-finite data")
        p = self.G.shape[1]
        if p and self.accepted.any():
            rank = np.linalg.matrix_rank(self.G)
            self.reject(rank < p, "redundant or inconsistent equalities")
        if data.n + p > 2000:
            self.reject(np.ones(data.k, dtype=bool), "too many unknowns for dense Newton systems")

    def _terms_at(
        self, X: np.ndarray, mem: np.ndarray, order: int
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[np.ndarray]]:
        """The terms' value (k,), gradient (k, n) and Hessian (k, n, n) at X (up to ``order``),
        and each term's argument U (reused by the line search: U is affine in x)."""
        k, n = X.shape
        value = np.zeros(k)
        grad = np.zeros((k, n)) if order >= 1 else None
        hess = np.zeros((k, n, n)) if order >= 2 else None
        args = []
        with np.errstate(all="ignore"):
            for t in self.terms:
                A, w = _take(t.A, mem), _take(t.w, mem)
                U = _mv(A, X) + _take(t.b, mem)
                args.append(U)
                calc = CALCULUS[t.atom]
                if order == 0 or calc.kind != "elementwise":
                    value += term_values(t.atom, U, w, t.M)
                if order == 0:
                    continue
                if calc.kind == "elementwise":
                    phi, d1, d2 = elementwise_parts(t.atom, U, t.M)
                    live = w != 0.0
                    value += np.sum(np.where(live, w * phi, 0.0), axis=1)
                    assert grad is not None
                    grad += _mtv(A, np.where(live, w * d1, 0.0))
                    if hess is not None:
                        h2 = np.where(live, w * d2, 0.0)
                        hess += np.matmul(np.swapaxes(A, 1, 2), A * h2[:, :, None])
                else:
                    assert calc.grad is not None and calc.hess is not None and grad is not None
                    grad += _mtv(A, w[:, :1] * calc.grad(U, t.M))
                    if hess is not None:
                        H2 = w[:, :1, None] * calc.hess(U, t.M)
                        hess += np.matmul(np.swapaxes(A, 1, 2), np.matmul(H2, A))
        return value, grad, hess, args

    def _value_along(self, mem: np.ndarray, args: list[np.ndarray], dirs: list[np.ndarray], t: np.ndarray) -> np.ndarray:
        """The terms' value at ``x + t dx`` from their arguments at x and their directions ``A dx``."""
        value = np.zeros(t.size)
        with np.errstate(all="ignore"):
            for term, U, dU in zip(self.terms, args, dirs):
                value += term_values(term.atom, U + t[:, None] * dU, _take(term.w, mem), term.M)
        return np.where(np.isfinite(value), value, np.inf)

    def solve(self, D: np.ndarray, rho: float, members: np.ndarray) -> StepResult:
        k, n = members.size, self.data.n
        p = self.G.shape[1]
        X = self.X[members].copy()
        ok = np.zeros(k, dtype=bool)
        why: dict[int, str] = {}
        live = self.accepted[members].copy()
        for i in np.flatnonzero(~live):
            why[int(i)] = self.rejected.get(int(members[i]), "not taken by this batch")
        if p:
            # start on the equalities (every Newton step then keeps them): x - G'(GG')^{-1}(Gx - h)
            G, h = self.G[members], self.h[members]
            res = _mv(G, X) - h
            with np.errstate(all="ignore"):
                X = X - _mtv(G, np.linalg.solve(np.matmul(G, np.swapaxes(G, 1, 2)), res[:, :, None])[:, :, 0])
        MtD = _mtv(self.data.M[members], D)
        for _ in range(NEWTON_MAX_ITER):
            idx = np.flatnonzero(live)
            if not idx.size:
                break
            mem = members[idx]
            x = X[idx]
            P, q, MtM = self.P[mem], self.q[mem], self.MtM[mem]
            tv, tg, tH, args = self._terms_at(x, mem, 2)
            assert tg is not None and tH is not None
            Hq = P + rho * MtM
            lin = q - rho * MtD[idx]
            Hx = _mv(Hq, x)
            F0 = 0.5 * np.einsum("ki,ki->k", x, Hx) + np.einsum("ki,ki->k", lin, x) + tv
            grad = Hx + lin + tg
            H = Hq + tH
            bad0 = ~np.isfinite(F0) | ~np.isfinite(grad).all(axis=1)
            for j in np.flatnonzero(bad0):
                why[int(idx[j])] = "the objective is not finite at the start (outside its domain?)"
            live[idx[bad0]] = False
            # the KKT residual: grad + G'nu = 0 on the equalities; nu from least squares
            if p:
                G = self.G[mem]
                GGt = np.matmul(G, np.swapaxes(G, 1, 2))
                with np.errstate(all="ignore"):
                    nu = np.linalg.solve(GGt, _mv(G, grad)[:, :, None])[:, :, 0]
                rd = grad - _mtv(G, nu)
            else:
                rd = grad
            scale = np.maximum.reduce([np.abs(Hx).max(axis=1, initial=0.0), np.abs(lin).max(axis=1, initial=0.0),
                                       np.abs(tg).max(axis=1, initial=0.0)])
            done = ~bad0 & (np.abs(rd).max(axis=1, initial=0.0) <= NEWTON_TOL * (1.0 + scale))
            ok[idx[done]] = True
            live[idx[done]] = False
            run = ~done & ~bad0
            if not run.any():
                continue
            idx, mem, x = idx[run], mem[run], x[run]
            grad, H, F0 = grad[run], H[run], F0[run]
            Hq, lin = Hq[run], lin[run]
            args = [U[run] for U in args]
            # a small shift keeps the system solvable where a term is flat (huber's linear part)
            shift = 1e-12 * np.maximum(1.0, np.abs(H).max(axis=(1, 2)))
            H = H + shift[:, None, None] * np.eye(n)
            with np.errstate(all="ignore"):
                if p:
                    G = self.G[mem]
                    K = np.zeros((idx.size, n + p, n + p))
                    K[:, :n, :n] = H
                    K[:, :n, n:] = np.swapaxes(G, 1, 2)
                    K[:, n:, :n] = G
                    rhs = np.concatenate([-grad, np.zeros((idx.size, p))], axis=1)
                    try:
                        dx = np.linalg.solve(K, rhs[:, :, None])[:, :n, 0]
                    except np.linalg.LinAlgError:
                        dx = np.full((idx.size, n), np.nan)
                else:
                    try:
                        dx = np.linalg.solve(H, -grad[:, :, None])[:, :, 0]
                    except np.linalg.LinAlgError:
                        dx = np.full((idx.size, n), np.nan)
            bad = ~np.isfinite(dx).all(axis=1)
            for jj in np.flatnonzero(bad):
                why[int(idx[jj])] = "the Newton system is singular"
            live[idx[bad]] = False
            keep = ~bad
            idx, mem, x, dx = idx[keep], mem[keep], x[keep], dx[keep]
            grad, F0, Hq, lin = grad[keep], F0[keep], Hq[keep], lin[keep]
            args = [U[keep] for U in args]
            if not idx.size:
                continue
            # Armijo backtracking on F: along x + t dx every term's argument is U + t A dx
            dirs = [_mv(_take(term.A, mem), dx) for term in self.terms]
            Hdx = _mv(Hq, dx)
            slope = np.einsum("ki,ki->k", grad, dx)
            xHx = np.einsum("ki,ki->k", x, _mv(Hq, x))
            t = np.ones(idx.size)
            pending = np.ones(idx.size, dtype=bool)
            for _ in range(_MAX_BACKTRACK):
                sel = np.flatnonzero(pending)
                if not sel.size:
                    break
                tj = t[sel]
                xt = x[sel] + tj[:, None] * dx[sel]
                quad = 0.5 * (xHx[sel] + 2.0 * tj * np.einsum("ki,ki->k", x[sel], Hdx[sel]) + tj * tj * np.einsum("ki,ki->k", dx[sel], Hdx[sel]))
                Ft = quad + np.einsum("ki,ki->k", lin[sel], xt) + self._value_along(mem[sel], [U[sel] for U in args], [d[sel] for d in dirs], tj)
                tiny = 1e3 * np.finfo(float).eps * (1.0 + np.abs(F0[sel]))
                accept = np.isfinite(Ft) & (Ft <= F0[sel] + _ALPHA * tj * slope[sel] + tiny)
                pending[sel[accept]] = False
                t[sel[~accept]] *= _BETA
            for jj in np.flatnonzero(pending):
                why[int(idx[jj])] = "the line search found no decrease"
            live[idx[pending]] = False
            move = ~pending
            X[idx[move]] = x[move] + t[move, None] * dx[move]
        for i in np.flatnonzero(live):
            why[int(i)] = f"no convergence in {NEWTON_MAX_ITER} Newton iterations"
        ok &= np.isfinite(X).all(axis=1)
        return StepResult(X, ok, why)


class CoordSolver(BatchSolver):
    """Separable smooth objectives with bounds: exact 1-D Newton per coordinate, batched."""

    method = "coord"

    def __init__(self, data: BatchData, accuracy: Accuracy | None = None) -> None:
        super().__init__(data, accuracy)
        g = data.group
        assert g.P is not None and g.q is not None and g.lo is not None and g.hi is not None
        self.p = np.einsum("kii->ki", data.take(g.P))  # the diagonal of P
        self.q = data.take(g.q)
        self.lo, self.hi = data.take(g.lo), data.take(g.hi)
        assert self.q is not None and self.lo is not None and self.hi is not None
        self.m = np.einsum("kri,kri->ki", data.M, data.M)  # the diagonal of M'M
        # each term entry: (coordinate, slope a, offset b, weight w) per member, and whether
        # no coordinate takes two entries of one term
        self.entries: list[tuple[str, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]] = []
        for t in data.terms():
            coord = np.argmax(np.abs(t.A), axis=2)  # (k, m)
            slope = np.take_along_axis(t.A, coord[:, :, None], axis=2)[:, :, 0]
            unique = all(np.unique(row).size == row.size for row in coord[:1]) and bool((coord == coord[:1]).all())
            self.entries.append((t.atom, t.M, coord, slope, t.b, t.w, unique))
        curv = self.p + self.m
        self.reject(~np.isfinite(self.q).all(axis=1), "non-finite data")
        self.reject(np.any(self.lo > self.hi, axis=1), "bounds with lo > hi")
        # strictly convex per coordinate: a curvature from P or the rows (terms may be flat)
        self.reject(np.any(curv <= 0.0, axis=1), "a coordinate no quadratic or row curves")

    def _derivs(self, X: np.ndarray, members: np.ndarray, c: np.ndarray, lin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per coordinate: first and second derivative of its 1-D function at X, whether X is in
        the terms' domain, and the size of the terms in the first derivative (for the tolerance)."""
        g1 = c * X + lin
        g2 = c.copy()
        size = np.abs(lin) + np.abs(c * X)
        inside = np.ones_like(X, dtype=bool)
        rows = np.arange(members.size)[:, None]
        with np.errstate(all="ignore"):
            for atom, Mh, coord, slope, off, w, unique in self.entries:
                co, a, b, ww = coord[members], slope[members], off[members], w[members]
                U = a * X[rows, co] + b
                calc = CALCULUS[atom]
                assert calc.d1 is not None and calc.d2 is not None
                live = ww != 0.0
                d1 = np.where(live, ww * a * calc.d1(U, Mh), 0.0)
                d2 = np.where(live, ww * a * a * calc.d2(U, Mh), 0.0)
                out = ~(calc.domain < U) & live if calc.domain is not None else None
                if unique:  # each coordinate takes at most one entry: plain fancy indexing
                    g1[rows, co] += d1
                    g2[rows, co] += d2
                    size[rows, co] += np.abs(d1)
                    if out is not None:
                        inside[rows, co] &= ~out
                else:
                    where = (np.broadcast_to(rows, co.shape), co)
                    np.add.at(g1, where, d1)
                    np.add.at(g2, where, d2)
                    np.add.at(size, where, np.abs(d1))
                    if out is not None:
                        np.logical_and.at(inside, where, ~out)
        return g1, g2, inside, size

    def solve(self, D: np.ndarray, rho: float, members: np.ndarray) -> StepResult:
        lo, hi = self.lo[members], self.hi[members]
        M = self.data.M[members]
        c = rho * self.m[members] + self.p[members]
        lin = self.q[members] - rho * np.matmul(D[:, None, :], M)[:, 0, :]
        why: dict[int, str] = {}
        # A bound is the answer when the derivative there points outside the interval; otherwise
        # the root is strictly inside, in a bracket: the bounds, and where they are infinite the
        # reach of the curvature (g is increasing with slope >= c: the root lies within |g(x0)|/c).
        X = np.clip(self.X[members].copy(), lo, hi)
        g_lo, _, in_lo, _ = self._derivs(np.where(np.isfinite(lo), lo, 0.0), members, c, lin)
        g_hi, _, in_hi, _ = self._derivs(np.where(np.isfinite(hi), hi, 0.0), members, c, lin)
        at_lo = np.isfinite(lo) & in_lo & (g_lo >= 0.0)
        at_hi = np.isfinite(hi) & in_hi & (g_hi <= 0.0) & ~at_lo
        g1, _, inside, _ = self._derivs(X, members, c, lin)
        reach = np.where(inside, np.abs(g1) / c, 0.0) + 1.0
        L = np.where(np.isfinite(lo), lo, X - reach)
        U = np.where(np.isfinite(hi), hi, X + reach)
        X = np.where(inside, X, np.where(np.isfinite(hi), hi, X + reach))  # a start inside the domain
        done = at_lo | at_hi
        for _ in range(COORD_MAX_ITER):
            g1, g2, inside, size = self._derivs(X, members, c, lin)
            small = inside & (np.abs(g1) <= NEWTON_TOL * (1.0 + size))
            done |= small
            if done.all():
                break
            # the bracket shrinks to the side of the root each evaluation shows
            L = np.where(~inside | (g1 < 0.0), np.maximum(L, X), L)
            U = np.where(inside & (g1 > 0.0), np.minimum(U, X), U)
            with np.errstate(all="ignore"):
                step = np.where(g2 > 0.0, X - g1 / g2, np.nan)
            mid = 0.5 * (L + U)
            nxt = np.where(inside & np.isfinite(step) & (step > L) & (step < U), step, mid)
            X = np.where(done, X, nxt)
            if np.all(done | (1e-15 * (1.0 + np.abs(X)) >= U - L)):
                break
        X = np.where(at_lo, lo, np.where(at_hi, hi, X))
        _, _, inside, _ = self._derivs(X, members, c, lin)
        ok = np.isfinite(X).all(axis=1) & inside.all(axis=1) & self.accepted[members]
        for i in np.flatnonzero(~ok):
            why[int(i)] = self.rejected.get(int(members[i]), "no solution inside the objective's domain")
        return StepResult(X, ok, why)
