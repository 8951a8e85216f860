"""Newton x-updates for smooth objectives: ``newton`` (linear equalities) and ``coord`` (separable,
with bounds).

The objective of a member is the analysis' form ``1/2 x'Px + q'x + sum_k terms_k`` with smooth
terms (``logistic``, ``huber``, ``exp``, ``log``, ``sqrt``, ``log_sum_exp``); their gradients and
Hessians are exact, from the calculus table (``catopt_dsl.ir.calculus``):

    grad = P x + q + sum_k A_k' (w_k * phi'(A_k x + b_k)) + rho M'(M x - d)
    hess = P + sum_k A_k' diag(w_k * phi''(A_k x + b_k)) A_k + rho M'M

``newton``: damped Newton with the equalities ``G x = h`` in the KKT system (Boyd and
Vandenberghe, *Convex Optimization*, section 10.3: the infeasible-start method, so a warm start
that breaks the equalities is fine), a backtracking line search on the norm of the KKT residual
that also keeps x where the objective is finite (``log``'s domain), all members at once (one
batched ``numpy.linalg.solve`` per iteration over the members still running). Warm started from
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

from catopt_dsl.ir.analysis import BatchTerm, term_values
from catopt_dsl.ir.calculus import CALCULUS
from catopt_dsl.solver.local.base import Accuracy, BatchData, BatchSolver, StepResult

__all__ = ["NEWTON_MAX_ITER", "NEWTON_TOL", "CoordSolver", "NewtonSolver"]

NEWTON_TOL = 1e-10
NEWTON_MAX_ITER = 60
_ALPHA, _BETA = 0.01, 0.5  # Armijo fraction and backtracking factor
_MAX_BACKTRACK = 60


def _term_parts(t: BatchTerm, X: np.ndarray, members: np.ndarray, want_hess: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(value (k,), gradient (k, n), Hessian (k, n, n) or None) of one term at X for ``members``."""
    A, b, w = t.A[members], t.b[members], t.w[members]
    U = np.einsum("kmn,kn->km", A, X) + b
    calc = CALCULUS[t.atom]
    value = term_values(t.atom, U, w, t.M)
    with np.errstate(all="ignore"):
        if calc.kind == "elementwise":
            assert calc.d1 is not None and calc.d2 is not None
            g1 = np.where(w != 0.0, w * calc.d1(U, t.M), 0.0)
            grad = np.einsum("kmn,km->kn", A, g1)
            hess = None
            if want_hess:
                h2 = np.where(w != 0.0, w * calc.d2(U, t.M), 0.0)
                hess = np.einsum("kmi,km,kmj->kij", A, h2, A)
        else:
            assert calc.grad is not None and calc.hess is not None
            g1 = w[:, :1] * calc.grad(U, t.M)
            grad = np.einsum("kmn,km->kn", A, g1)
            hess = None
            if want_hess:
                H2 = w[:, :1, None] * calc.hess(U, t.M)
                hess = np.einsum("kmi,kml,klj->kij", A, H2, A)
    return value, grad, hess


class NewtonSolver(BatchSolver):
    """Smooth terms with linear equalities: batched damped (infeasible-start) Newton."""

    method = "newton"

    def __init__(self, data: BatchData, accuracy: Accuracy | None = None) -> None:
        super().__init__(data, accuracy)
        g = data.group
        assert g.P is not None and g.q is not None and g.A_eq is not None and g.b_eq is not None
        self.P, self.q = data.take(g.P), data.take(g.q)
        self.G, self.h = data.take(g.A_eq), data.take(g.b_eq)
        assert self.P is not None and self.q is not None and self.G is not None and self.h is not None
        self.terms = data.terms()
        self.MtM = np.matmul(np.swapaxes(data.M, 1, 2), data.M)
        self.nu = np.zeros((data.k, self.G.shape[1]))
        finite = np.isfinite(self.P).all(axis=(1, 2)) & np.isfinite(self.q).all(axis=1)
        self.reject(~finite, "non-finite data")
        p = self.G.shape[1]
        if p and self.accepted.any():
            rank = np.linalg.matrix_rank(self.G)
            self.reject(rank < p, "redundant or inconsistent equalities")
        if data.n + p > 2000:
            self.reject(np.ones(data.k, dtype=bool), "too many unknowns for dense Newton systems")

    def _f(self, X: np.ndarray, D: np.ndarray, rho: float, members: np.ndarray) -> np.ndarray:
        """F = f + rho/2 ||M x - d||^2 for the members (inf outside the domain)."""
        P, q = self.P[members], self.q[members]
        with np.errstate(all="ignore"):
            val = 0.5 * np.einsum("ki,kij,kj->k", X, P, X) + np.einsum("ki,ki->k", q, X)
            R = np.einsum("krn,kn->kr", self.data.M[members], X) - D
            val = val + 0.5 * rho * np.einsum("kr,kr->k", R, R)
            for t in self.terms:
                U = np.einsum("kmn,kn->km", t.A[members], X) + t.b[members]
                val = val + term_values(t.atom, U, t.w[members], t.M)
        return np.where(np.isfinite(val), val, np.inf)

    def _grad_hess(
        self, X: np.ndarray, D: np.ndarray, rho: float, members: np.ndarray, want_hess: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        P, q, M = self.P[members], self.q[members], self.data.M[members]
        with np.errstate(all="ignore"):
            R = np.einsum("krn,kn->kr", M, X) - D
            grad = np.einsum("kij,kj->ki", P, X) + q + rho * np.einsum("krn,kr->kn", M, R)
            scale = np.maximum(np.abs(q).max(axis=1, initial=0.0), np.abs(rho * np.einsum("krn,kr->kn", M, D)).max(axis=1, initial=0.0))
            hess = P + rho * self.MtM[members] if want_hess else None
            for t in self.terms:
                _, g, H = _term_parts(t, X, members, want_hess)
                grad = grad + g
                scale = np.maximum(scale, np.abs(g).max(axis=1, initial=0.0))
                if hess is not None and H is not None:
                    hess = hess + H
        return grad, hess, scale

    def _residual(self, X: np.ndarray, nu: np.ndarray, D: np.ndarray, rho: float, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dual residual (k, n), primal residual (k, p), scale (k,)) of the KKT conditions."""
        grad, _, scale = self._grad_hess(X, D, rho, members, want_hess=False)
        G = self.G[members]
        rd = grad + np.einsum("kpn,kp->kn", G, nu)
        rp = np.einsum("kpn,kn->kp", G, X) - self.h[members]
        return rd, rp, scale

    def solve(self, D: np.ndarray, rho: float, members: np.ndarray) -> StepResult:
        k, n = members.size, self.data.n
        p = self.G.shape[1]
        X = self.X[members].copy()
        nu = self.nu[members].copy()
        ok = np.zeros(k, dtype=bool)
        why: dict[int, str] = {}
        live = self.accepted[members].copy()
        for i in np.flatnonzero(~live):
            why[int(i)] = self.rejected.get(int(members[i]), "not taken by this batch")
        start_f = self._f(X, D, rho, members)
        for i in np.flatnonzero(live & ~np.isfinite(start_f)):
            why[int(i)] = "the warm start is outside the objective's domain"
        live &= np.isfinite(start_f)
        for _ in range(NEWTON_MAX_ITER):
            if not live.any():
                break
            idx = np.flatnonzero(live)
            mem = members[idx]
            grad, hess, scale = self._grad_hess(X[idx], D[idx], rho, mem)
            assert hess is not None
            G = self.G[mem]
            rd = grad + np.einsum("kpn,kp->kn", G, nu[idx])
            rp = np.einsum("kpn,kn->kp", G, X[idx]) - self.h[mem]
            tol = NEWTON_TOL * (1.0 + scale)
            done = (np.abs(rd).max(axis=1, initial=0.0) <= tol) & (np.abs(rp).max(axis=1, initial=0.0) <= tol)
            ok[idx[done]] = True
            live[idx[done]] = False
            if done.all():
                break
            run = ~done
            idx, mem = idx[run], mem[run]
            grad, hess, G = grad[run], hess[run], G[run]
            rd, rp = rd[run], rp[run]
            # a small shift keeps the system solvable where a term is flat (huber's linear part)
            shift = 1e-12 * np.maximum(1.0, np.abs(hess).max(axis=(1, 2)))
            K = np.zeros((idx.size, n + p, n + p))
            K[:, :n, :n] = hess + shift[:, None, None] * np.eye(n)
            K[:, :n, n:] = np.swapaxes(G, 1, 2)
            K[:, n:, :n] = G
            rhs = np.concatenate([-grad, -rp], axis=1)
            with np.errstate(all="ignore"):
                try:
                    sol = np.linalg.solve(K, rhs[:, :, None])[:, :, 0]
                except np.linalg.LinAlgError:
                    sol = np.full_like(rhs, np.nan)
            dx, nu_new = sol[:, :n], sol[:, n:]
            dnu = nu_new - nu[idx]
            bad = ~np.isfinite(sol).all(axis=1)
            for jj in np.flatnonzero(bad):
                why[int(idx[jj])] = "the Newton system is singular"
            live[idx[bad]] = False
            keep = ~bad
            idx, mem, dx, dnu = idx[keep], mem[keep], dx[keep], dnu[keep]
            rd, rp = rd[keep], rp[keep]
            if not idx.size:
                continue
            norm0 = np.sqrt(np.einsum("kn,kn->k", rd, rd) + np.einsum("kp,kp->k", rp, rp))
            t = np.ones(idx.size)
            pending = np.ones(idx.size, dtype=bool)
            for _ in range(_MAX_BACKTRACK):
                j = np.flatnonzero(pending)
                if not j.size:
                    break
                Xt = X[idx[j]] + t[j, None] * dx[j]
                nut = nu[idx[j]] + t[j, None] * dnu[j]
                finite = np.isfinite(self._f(Xt, D[idx[j]], rho, mem[j]))
                rdt, rpt, _ = self._residual(Xt, nut, D[idx[j]], rho, mem[j])
                norm = np.sqrt(np.einsum("kn,kn->k", rdt, rdt) + np.einsum("kp,kp->k", rpt, rpt))
                accept = finite & np.isfinite(norm) & (norm <= (1.0 - _ALPHA * t[j]) * norm0[j])
                # at rounding level the residual cannot fall further: take the full step
                accept |= finite & (norm0[j] <= 1e3 * np.finfo(float).eps * (1.0 + norm0[j]))
                pending[j[accept]] = False
                t[j[~accept]] *= _BETA
            stuck = pending
            for jj in np.flatnonzero(stuck):
                why[int(idx[jj])] = "the line search found no decrease"
            live[idx[stuck]] = False
            move = ~stuck
            X[idx[move]] += t[move, None] * dx[move]
            nu[idx[move]] += t[move, None] * dnu[move]
        for i in np.flatnonzero(live):
            why[int(i)] = f"no convergence in {NEWTON_MAX_ITER} Newton iterations"
        ok &= np.isfinite(X).all(axis=1)
        self.nu[members[ok]] = nu[ok]
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
        # each term entry: (coordinate, slope a, offset b, weight w) per member
        self.entries: list[tuple[str, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for t in data.terms():
            coord = np.argmax(np.abs(t.A), axis=2)  # (k, m)
            slope = np.take_along_axis(t.A, coord[:, :, None], axis=2)[:, :, 0]
            self.entries.append((t.atom, t.M, coord, slope, t.b, t.w))
        curv = self.p + self.m
        self.reject(~np.isfinite(self.q).all(axis=1), "non-finite data")
        self.reject(np.any(self.lo > self.hi, axis=1), "bounds with lo > hi")
        # strictly convex per coordinate: a curvature from P or the rows (terms may be flat)
        self.reject(np.any(curv <= 0.0, axis=1), "a coordinate no quadratic or row curves")

    def _derivs(self, X: np.ndarray, D: np.ndarray, rho: float, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """First and second derivative of each coordinate's 1-D function, and whether x is in the domain."""
        M = self.data.M[members]
        c = rho * self.m[members] + self.p[members]
        lin = self.q[members] - rho * np.einsum("kri,kr->ki", M, D)
        g1 = c * X + lin
        g2 = c.copy()
        inside = np.ones_like(X, dtype=bool)
        rows = np.arange(members.size)[:, None]
        with np.errstate(all="ignore"):
            for atom, Mh, coord, slope, off, w in self.entries:
                co, a, b, ww = coord[members], slope[members], off[members], w[members]
                U = a * X[rows, co] + b
                calc = CALCULUS[atom]
                assert calc.d1 is not None and calc.d2 is not None
                d1 = np.where(ww != 0.0, ww * a * calc.d1(U, Mh), 0.0)
                d2 = np.where(ww != 0.0, ww * a * a * calc.d2(U, Mh), 0.0)
                np.add.at(g1, (np.broadcast_to(rows, co.shape), co), d1)
                np.add.at(g2, (np.broadcast_to(rows, co.shape), co), d2)
                if calc.domain is not None:
                    bad = (ww != 0.0) & ~(U > calc.domain)
                    np.logical_and.at(inside, (np.broadcast_to(rows, co.shape), co), ~bad)
        return g1, g2, inside

    def solve(self, D: np.ndarray, rho: float, members: np.ndarray) -> StepResult:
        lo, hi = self.lo[members], self.hi[members]
        X = np.clip(self.X[members].copy(), lo, hi)
        why: dict[int, str] = {}
        # The bracket: the bounds, and where they are infinite, the reach of the curvature
        # (g is increasing with slope >= c: the root lies within |g(x0)| / c of x0).
        g1, _, inside = self._derivs(X, D, rho, members)
        c = rho * self.m[members] + self.p[members]
        reach = np.abs(g1) / c + 1.0
        L = np.where(np.isfinite(lo), lo, X - reach)
        U = np.where(np.isfinite(hi), hi, X + reach)
        if not inside.all():
            # the warm start is outside a term's domain (a first step from x = 0): start inside
            X = np.where(inside, X, np.where(np.isfinite(hi), hi, X + reach))
        for _ in range(200):
            g1, g2, inside = self._derivs(X, D, rho, members)
            # the domain side of the bracket: a point outside cannot be the minimiser
            L = np.where(~inside & (X > L), X, L)
            below = inside & (g1 < 0.0)
            L = np.where(below, np.maximum(L, X), L)
            U = np.where(inside & (g1 > 0.0), np.minimum(U, X), U)
            with np.errstate(all="ignore"):
                step = np.where(g2 > 0.0, X - g1 / g2, np.nan)
            mid = 0.5 * (L + U)
            nxt = np.where(np.isfinite(step) & (step > L) & (step < U), step, mid)
            nxt = np.where(inside, nxt, mid)
            width = np.abs(nxt - X)
            X = nxt
            tiny = 1e-15 * (1.0 + np.abs(X))
            if np.all((width <= tiny) | (U - L <= tiny)):
                break
        g1, _, inside = self._derivs(X, D, rho, members)
        # a bound is the answer when the derivative there points outside the interval
        X = np.where(np.isfinite(lo) & (g1 > 0.0) & (X <= lo + 1e-12 * (1.0 + np.abs(lo))), lo, X)
        X = np.where(np.isfinite(hi) & (g1 < 0.0) & (X >= hi - 1e-12 * (1.0 + np.abs(hi))), hi, X)
        ok = np.isfinite(X).all(axis=1) & inside.all(axis=1) & self.accepted[members]
        for i in np.flatnonzero(~ok):
            why[int(i)] = self.rejected.get(int(members[i]), "no solution inside the objective's domain")
        return StepResult(X, ok, why)
