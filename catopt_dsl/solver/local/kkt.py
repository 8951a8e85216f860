"""Closed-form x-updates: quadratic objectives with linear equalities (``kkt``), and separable
quadratics with bounds (``clip``).

For ``f(x) = 1/2 x'Px + q'x`` and equalities ``G x = h`` the x-update is the solution of

    [P + rho M'M   G'] [x]   [rho M'd - q]
    [G             0 ] [v] = [h          ]

which is affine in the centres: ``x = c0 + L d``. The system is solved once per rho for the whole
batch and every step is one batched product. Without equalities (``p = 0``) the matrix
``P + rho M'M`` is positive definite and, for ``n <= 16``, inverted through its Cholesky factor
(one batched factorisation and a forward substitution vectorised over the stack); otherwise, or
should a factorisation fail, one ``numpy.linalg.solve`` over the stack ``(k, n+p, n+p)`` with
``1 + r`` right-hand sides gives the maps. With separable bounds (P and M'M diagonal, so the problem
splits by coordinate and each 1-D minimiser over an interval is the clipped free one) the map is
followed by a clip.

Members are checked once, numerically: the equalities must have full row rank (redundant or
inconsistent rows go to CVXPY for an honest status), ``P + M'M + G'G`` must be positive definite
(otherwise a direction is free and the local problem may be unbounded: CVXPY decides), bounds
must satisfy ``lo <= hi``, and ``n + p`` must stay under ``FAST_MAX_SIZE`` (dense maps).
"""

from __future__ import annotations

import numpy as np

from catopt_dsl.ir.analysis import psd
from catopt_dsl.solver.local.base import Accuracy, BatchData, BatchSolver, StepResult

__all__ = ["FAST_MAX_SIZE", "KKTSolver"]

FAST_MAX_SIZE = 2000


#: the largest n whose KKT matrices (no equalities) are inverted through a Cholesky factor
_CHOLESKY_MAX = 16


def _spd_inverse(K: np.ndarray) -> np.ndarray | None:
    """The inverses of a stack ``(k, n, n)`` of symmetric positive definite matrices, from their
    Cholesky factors ``K = L L'``: ``K^-1 = W'W`` with ``W = L^-1`` found row by row (forward
    substitution, each row one product over the whole stack). None when a factorisation fails."""
    if not np.array_equal(K, np.swapaxes(K, 1, 2)):  # a Cholesky factor reads one triangle only
        return None
    try:
        L = np.linalg.cholesky(K)
    except np.linalg.LinAlgError:
        return None
    n = K.shape[-1]
    W = np.zeros_like(K)
    inv_diag = 1.0 / np.diagonal(L, axis1=1, axis2=2)
    W[:, 0, 0] = inv_diag[:, 0]
    for j in range(1, n):
        # row j of W = (e_j - L[j, :j] W[:j, :]) / L[j, j]  (W lower triangular: columns > j stay 0)
        row = -np.matmul(L[:, j : j + 1, :j], W[:, :j, : j + 1])[:, 0, :]
        row[:, j] += 1.0
        W[:, j, : j + 1] = row * inv_diag[:, j, None]
    # W' made contiguous first: the batched product of two contiguous stacks is the faster one
    return np.matmul(np.ascontiguousarray(np.swapaxes(W, 1, 2)), W)


class KKTSolver(BatchSolver):
    """The closed-form x-update of a batch (``clip``: followed by the separable bounds)."""

    def __init__(self, data: BatchData, clip: bool, accuracy: Accuracy | None = None) -> None:
        super().__init__(data, accuracy)
        self.method = "clip" if clip else "kkt"
        g = data.group
        assert g.P is not None and g.q is not None and g.A_eq is not None and g.b_eq is not None
        self.P = data.take(g.P)
        self.q = data.take(g.q)
        self.G = data.take(g.A_eq)
        self.h = data.take(g.b_eq)
        assert self.P is not None and self.q is not None and self.G is not None and self.h is not None
        self.lo: np.ndarray | None = data.take(g.lo) if clip else None
        self.hi: np.ndarray | None = data.take(g.hi) if clip else None
        self.MtM = data.MtM()
        ok, why = self._check()
        self.accepted, self.rejected = ok, why
        self._rho: float | None = None
        self.C0 = np.zeros((data.k, data.n))
        self.L = np.zeros((data.k, data.n, data.r))

    def _check(self) -> tuple[np.ndarray, dict[int, str]]:
        d = self.data
        k, n, p = d.k, d.n, self.G.shape[1]
        ok = np.ones(k, dtype=bool)
        why: dict[int, str] = {}
        if n == 0:
            return np.zeros(k, dtype=bool), dict.fromkeys(range(k), "no variables")
        if n + p > FAST_MAX_SIZE:
            return np.zeros(k, dtype=bool), dict.fromkeys(range(k), f"{n + p} unknowns: too large for a dense map")
        finite = np.isfinite(self.P).all(axis=(1, 2)) & np.isfinite(self.q).all(axis=1)
        if p:
            finite &= np.isfinite(self.G).all(axis=(1, 2)) & np.isfinite(self.h).all(axis=1)
            rank = np.zeros(k, dtype=np.int64)
            rank[finite] = np.linalg.matrix_rank(self.G[finite]) if finite.any() else rank[finite]
            bad = finite & (rank < p)
            for i in np.flatnonzero(bad):
                why[int(i)] = "redundant or inconsistent equalities"
            ok &= ~bad
        for i in np.flatnonzero(~finite):
            why[int(i)] = "non-finite data"
        ok &= finite
        if ok.any():
            H = self.P + self.MtM + np.matmul(np.swapaxes(self.G, 1, 2), self.G)
            free = ok & ~psd(H, -1e-10)  # positive definite: smallest eigenvalue > 1e-10 * scale
            for i in np.flatnonzero(free):
                why[int(i)] = "a direction no term or row curves: the local problem may be unbounded"
            ok &= ~free
        if self.lo is not None and self.hi is not None:
            crossed = np.any(self.lo > self.hi, axis=1)
            for i in np.flatnonzero(ok & crossed):
                why[int(i)] = "bounds with lo > hi"
            ok &= ~crossed
        return ok, why

    def prepare(self, rho: float) -> None:
        """Solve the KKT systems of the batch for this rho (cached until rho changes)."""
        if self._rho == rho:
            return
        d = self.data
        k, n, r, p = d.k, d.n, d.r, self.G.shape[1]
        if p == 0 and n <= _CHOLESKY_MAX and self.accepted.all():
            # Without equalities K = P + rho M'M is positive definite (checked in _check): a small
            # one is inverted through its Cholesky factor by a substitution vectorised over the
            # batch (numpy has no batched triangular solve; a batched LU solve of many small
            # systems costs about twice as much), and the maps are products with the inverse
            # (columns of it, for a selection template). Should rounding make a factorisation
            # fail, the LU solve below decides, as before.
            Kinv = _spd_inverse(self.P + rho * self.MtM)
            if Kinv is not None:
                self.C0 = -np.matmul(Kinv, self.q[:, :, None])[:, :, 0]
                cols = d.selection
                if cols is not None:
                    self.L = rho * Kinv[:, :, cols]
                else:
                    MT = d.template.T if d.template is not None else np.swapaxes(d.M, 1, 2)
                    self.L = np.ascontiguousarray(np.matmul(Kinv, rho * MT))
                self._rho = rho
                return
        K = np.zeros((k, n + p, n + p))
        K[:, :n, :n] = self.P + rho * self.MtM
        K[:, :n, n:] = np.swapaxes(self.G, 1, 2)
        K[:, n:, :n] = self.G
        rhs = np.zeros((k, n + p, 1 + r))
        rhs[:, :n, 0] = -self.q
        rhs[:, n:, 0] = self.h
        rhs[:, :n, 1:] = rho * (d.template.T if d.template is not None else np.swapaxes(d.M, 1, 2))
        live = self.accepted
        if live.all():
            sol = np.linalg.solve(K, rhs)
        else:
            sol = np.zeros_like(rhs)
            if live.any():
                sol[live] = np.linalg.solve(K[live], rhs[live])
        self.C0 = np.ascontiguousarray(sol[:, :n, 0])
        self.L = np.ascontiguousarray(sol[:, :n, 1:])
        self._rho = rho

    def solve(self, D: np.ndarray, rho: float, members: np.ndarray) -> StepResult:
        self.prepare(rho)
        if members is self.everyone:  # the whole batch in order: no gathering copies
            X = self.C0 + np.matmul(self.L, D[:, :, None])[:, :, 0]
            if self.lo is not None and self.hi is not None:
                X = np.clip(X, self.lo, self.hi)
            return StepResult(X, self.accepted & np.isfinite(X).all(axis=1), {})
        X = self.C0[members] + np.matmul(self.L[members], D[:, :, None])[:, :, 0]
        if self.lo is not None and self.hi is not None:
            X = np.clip(X, self.lo[members], self.hi[members])
        ok = self.accepted[members] & np.isfinite(X).all(axis=1)
        return StepResult(X, ok, {})
