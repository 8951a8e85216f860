"""``split``: an inner ADMM (OSQP's splitting, with proxes) for quadratics with inequalities and
terms that have a closed-form prox.

The x-update of a member is

    minimize  1/2 x'Qx + p'x + sum_k g_k(S_k x + s_k)   subject to  l <= C x <= u

with ``Q = P + rho M'M``, ``p = q - rho M'd``, ``g_k`` the terms of the objective (``abs``,
``norm1``, ``norm2``, ``norm_inf``, ``huber``, ``exp``, ``-log``, ``pos``, ``neg``, ``max``: each with a
closed-form prox in ``catopt_dsl.ir.calculus``), and ``C`` the equality and inequality rows (the
bounds, and the rows lifted from ``abs(...) <= r`` and the like). Stacking ``K = [S; C]``, it is
solved by the ADMM OSQP runs (Stellato et al., Math. Prog. Comp. 2020), with the box projection
replaced by the terms' proxes on their rows (a generalised z-update):

    x~  = (Q + sigma I + K'RK)^{-1} (sigma x - p + K'(R (z - s) - y))
    z   = prox_{g/R}(alpha (K x~ + s) + (1 - alpha) z + y / R)      (clip to [l, u] on C's rows)
    y  += R (alpha (K x~ + s) + (1 - alpha) z_old - z),   x = alpha x~ + (1 - alpha) x

Why this and not an interior-point method: the matrix ``Q + sigma I + K'RK`` changes only when
the outer rho or the inner penalty R changes, so it is inverted then (one batched inverse over
the members) and each inner iteration is a few matrix-vector products over the whole batch; and
the method warm-starts: from the previous outer iteration's x, z and y it usually needs a few
iterations, where an interior-point method restarts from the centre of the feasible set every
time and forms and factors a new matrix at each of its 10-20 iterations.

Accuracy: the step stops when the primal residual ``||Kx + s - z||_inf`` and the dual residual
``||Qx + p + K'y||_inf`` are both within the tolerance of :meth:`BatchSolver.tolerance` (tied to
how far the outer iteration moved the centres, down to a hundredth of ``eps_abs``) plus
``INNER_REL * eps_rel`` times the size of the terms; R is rebalanced per member from those
residuals (OSQP's rule) when they drift more than 5x apart. Equality rows get a 1000x penalty
(OSQP's choice). A member that does not converge in ``SPLIT_MAX_ITER`` iterations (an infeasible
constraint set, a term unbounded below) fails the step, and CVXPY then gives its status.
"""

from __future__ import annotations

import numpy as np

from catopt_dsl.ir.calculus import CALCULUS
from catopt_dsl.solver.local.base import (
    INNER_FLOOR,
    Accuracy,
    BatchData,
    BatchSolver,
    StepResult,
)

__all__ = ["SPLIT_MAX_ITER", "SplitSolver"]

SPLIT_MAX_ITER = 4000
SIGMA = 1e-6
ALPHA = 1.6
EQ_SCALE = 1e3
ADAPT_EVERY = 25
ADAPT_MOVE = 5.0
INNER_REL = INNER_FLOOR


class SplitSolver(BatchSolver):
    """Quadratic + proximable terms + linear (in)equalities: batched, warm-started inner ADMM."""

    method = "split"

    def __init__(self, data: BatchData, accuracy: Accuracy | None = None) -> None:
        super().__init__(data, accuracy)
        g = data.group
        assert g.P is not None and g.q is not None and g.A_eq is not None and g.A_in is not None
        P, q = data.take(g.P), data.take(g.q)
        A_eq, b_eq, A_in, b_in = data.take(g.A_eq), data.take(g.b_eq), data.take(g.A_in), data.take(g.b_in)
        assert P is not None and q is not None and A_eq is not None and b_eq is not None
        assert A_in is not None and b_in is not None
        self.P, self.q = P, q
        k, n = data.k, data.n
        terms = data.terms()
        blocks: list[tuple[str, float, slice, np.ndarray, bool]] = []  # atom, M, rows, weights, elementwise
        S_parts, s_parts = [], []
        start = 0
        for t in terms:
            calc = CALCULUS[t.atom]
            if calc.prox is None:
                raise ValueError(f"`{t.atom}` has no closed-form prox")
            m = t.A.shape[1]
            weight = calc.sign * t.w  # >= 0: the convex version's weights
            blocks.append((t.atom, t.M, slice(start, start + m), weight, calc.kind == "elementwise"))
            S_parts.append(t.A)
            s_parts.append(t.b)
            start += m
        self.blocks = blocks
        self.n_terms = start
        p_eq, p_in = A_eq.shape[1], A_in.shape[1]
        self.K = np.concatenate([*S_parts, A_eq, A_in], axis=1) if (S_parts or p_eq or p_in) else np.zeros((k, 0, n))
        self.s = np.concatenate([*s_parts, np.zeros((k, p_eq + p_in))], axis=1)
        self.l = np.concatenate([np.full((k, start), -np.inf), b_eq, np.full((k, p_in), -np.inf)], axis=1)
        self.u = np.concatenate([np.full((k, start), np.inf), b_eq, b_in], axis=1)
        self.is_eq = np.zeros(self.K.shape[1], dtype=bool)
        self.is_eq[start : start + p_eq] = True
        self.MtM = np.matmul(np.swapaxes(data.M, 1, 2), data.M)
        mk = self.K.shape[1]
        self.Z = np.zeros((k, mk))
        self.Y = np.zeros((k, mk))
        self.R = np.ones(k)  # the inner penalty per member (equality rows: EQ_SCALE x)
        self._Finv = np.zeros((k, n, n))
        self._key = np.full(k, np.nan)  # the outer rho each member's inverse was built for
        self._started = np.zeros(k, dtype=bool)
        finite = np.isfinite(P).all(axis=(1, 2)) & np.isfinite(q).all(axis=1) & np.isfinite(self.K).all(axis=(1, 2))
        self.reject(~finite, "non-finite data")
        self.reject(np.any(self.l > self.u, axis=1), "constraint rows with lower > upper bound")
        if n > 2000:
            self.reject(np.ones(k, dtype=bool), "too many variables for dense inner systems")

    # -- the inner matrix ------------------------------------------------------------------------
    def _rows_R(self, members: np.ndarray) -> np.ndarray:
        R = np.repeat(self.R[members, None], self.K.shape[1], axis=1)
        R[:, self.is_eq] *= EQ_SCALE
        return R

    def _factor(self, members: np.ndarray, rho: float) -> None:
        """(Re)build ``(Q + sigma I + K'RK)^{-1}`` of the members (one batched inverse)."""
        if not members.size:
            return
        n = self.data.n
        Q = self.P[members] + rho * self.MtM[members]
        K = self.K[members]
        R = self._rows_R(members)
        F = Q + SIGMA * np.eye(n) + np.einsum("kmi,km,kmj->kij", K, R, K)
        with np.errstate(all="ignore"):
            try:
                self._Finv[members] = np.linalg.inv(F)
            except np.linalg.LinAlgError:
                for i in members:  # find the singular ones, keep the others
                    try:
                        self._Finv[i] = np.linalg.inv(F[members.tolist().index(i)])
                    except np.linalg.LinAlgError:
                        self._Finv[i] = np.nan
        self._key[members] = rho

    def _initial_R(self, members: np.ndarray, rho: float) -> None:
        """A first inner penalty on the scale of the objective's curvature per unit of row."""
        Q = self.P[members] + rho * self.MtM[members]
        diag = np.abs(np.einsum("kii->ki", Q)).mean(axis=1)
        rows = np.einsum("kmn,kmn->k", self.K[members], self.K[members]) / max(1, self.K.shape[1])
        self.R[members] = np.clip(np.where(rows > 0, diag / np.maximum(rows, 1e-300), 1.0), 1e-6, 1e6)

    # -- the z-update: proxes and projections ----------------------------------------------------------
    def _z_update(self, V: np.ndarray, R: np.ndarray, members: np.ndarray) -> np.ndarray:
        Z = np.clip(V, self.l[members], self.u[members])
        for atom, Mh, rows, weight, elementwise in self.blocks:
            calc = CALCULUS[atom]
            assert calc.prox is not None
            w = weight[members]
            if elementwise:
                Z[:, rows] = calc.prox(V[:, rows], w / R[:, rows], Mh)
            else:
                Z[:, rows] = calc.prox(V[:, rows], w[:, 0] / R[:, rows.start], Mh)
        return Z

    # -- one x-update ----------------------------------------------------------------------------
    def solve(self, D: np.ndarray, rho: float, members: np.ndarray) -> StepResult:
        tol = self.tolerance(D, rho, members)
        k = members.size
        why: dict[int, str] = {}
        live = self.accepted[members].copy()
        for i in np.flatnonzero(~live):
            why[int(i)] = self.rejected.get(int(members[i]), "not taken by this batch")
        fresh = members[~self._started[members]]
        if fresh.size:
            self._initial_R(fresh, rho)
            self._started[fresh] = True
        stale = members[self._key[members] != rho]
        self._factor(stale, rho)
        M = self.data.M[members]
        P, K, s = self.P[members], self.K[members], self.s[members]
        p = self.q[members] - rho * np.einsum("krn,kr->kn", M, D)
        Q = P + rho * self.MtM[members]
        X, Z, Y = self.X[members].copy(), self.Z[members].copy(), self.Y[members].copy()
        R = self._rows_R(members)
        Finv = self._Finv[members]
        eps_rel = self.accuracy.eps_rel * INNER_REL
        done = ~live
        converged = np.zeros(k, dtype=bool)
        iterations = 0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for it in range(1, SPLIT_MAX_ITER + 1):
                iterations = it
                rhs = SIGMA * X - p + np.einsum("kmn,km->kn", K, R * (Z - s) - Y)
                Xt = np.einsum("kij,kj->ki", Finv, rhs)
                KXt = np.einsum("kmn,kn->km", K, Xt) + s
                Zhat = ALPHA * KXt + (1.0 - ALPHA) * Z
                Znew = self._z_update(Zhat + Y / R, R, members)
                Y = Y + R * (Zhat - Znew)
                X = ALPHA * Xt + (1.0 - ALPHA) * X
                Z = Znew
                if it % 5 and it != 1:
                    continue
                KX = np.einsum("kmn,kn->km", K, X) + s
                Kty = np.einsum("kmn,km->kn", K, Y)
                QX = np.einsum("kij,kj->ki", Q, X)
                r_p = np.abs(KX - Z).max(axis=1, initial=0.0)
                r_d = np.abs(QX + p + Kty).max(axis=1, initial=0.0)
                s_p = np.maximum(np.abs(KX).max(axis=1, initial=0.0), np.abs(Z).max(axis=1, initial=0.0))
                s_d = np.maximum.reduce([np.abs(QX).max(axis=1, initial=0.0), np.abs(p).max(axis=1, initial=0.0),
                                         np.abs(Kty).max(axis=1, initial=0.0)])
                good = (r_p <= tol + eps_rel * s_p) & (r_d <= tol + eps_rel * s_d) & np.isfinite(X).all(axis=1)
                converged |= good & live
                done |= good
                if done.all():
                    break
                if it % ADAPT_EVERY == 0:
                    # OSQP's rule, per member: rebalance R when the normalised residuals drift apart
                    with np.errstate(all="ignore"):
                        ratio = (r_p / np.maximum(s_p, 1e-12)) / np.maximum(r_d / np.maximum(s_d, 1e-12), 1e-12)
                        factor = np.sqrt(np.clip(ratio, 1e-12, 1e12))
                    move = ~done & np.isfinite(factor) & ((factor > ADAPT_MOVE) | (factor < 1.0 / ADAPT_MOVE))
                    if move.any():
                        sel = members[move]
                        self.R[sel] = np.clip(self.R[sel] * factor[move], 1e-8, 1e8)
                        self._factor(sel, rho)
                        R = self._rows_R(members)
                        Finv = self._Finv[members]
        ok = converged & np.isfinite(X).all(axis=1)
        for i in np.flatnonzero(live & ~ok):
            why[int(i)] = f"the inner ADMM did not converge in {iterations} iterations"
        # keep the warm start of the members that converged (the others restart from where they were)
        self.Z[members[ok]] = Z[ok]
        self.Y[members[ok]] = Y[ok]
        self.iterations = iterations
        return StepResult(X, ok, why)
