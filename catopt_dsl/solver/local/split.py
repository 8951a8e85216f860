"""``split``: quadratics with linear inequalities and terms with closed-form proxes: a warm-started
active-set solve, and an inner ADMM (OSQP's splitting, with proxes) to find the active set.

The x-update of a member is

    minimize  1/2 x'Qx + p'x + sum_k g_k(S_k x + s_k)   subject to  l <= C x <= u

with ``Q = P + rho M'M``, ``p = q - rho M'd``, ``g_k`` the terms of the objective (``abs``,
``norm1``, ``norm2``, ``norm_inf``, ``huber``, ``exp``, ``-log``, ``pos``, ``neg``, ``max``: each with a
closed-form prox in ``catopt_dsl.ir.calculus``), and ``C`` the constraint rows: the equalities
(``l = u``), one box row per bounded coordinate, and the other inequality rows (those lifted from
``abs(x[1:] - x[:-1]) <= r`` come in pairs ``+-a'x <= r`` and are merged into one interval row).

**Active-set solve (exact).** Without terms, the solution is fixed by which rows are at a bound:
with those rows A held at their bounds b_A,

    lambda_A = (C_A Q^-1 C_A')^-1 (-C_A Q^-1 p - b_A),    x = -Q^-1 (p + C_A' lambda_A),

exact up to rounding. ``C Q^-1 C'`` is formed once per rho for the whole batch; each step solves
the masked system (inactive rows replaced by identity rows, so every member's system has one
size and the batch is one ``numpy.linalg.solve``). The guess is the previous step's active set
(OSQP's polish rule on the warm z and y); it is accepted only if it verifies: every inactive row
within its bounds and every multiplier of the right sign, to the inner tolerance below. Near
convergence the active set no longer changes, and a step costs one small batched solve.

**Inner ADMM (finds the active set; solves the terms).** When the guess fails (or the objective
has terms), the ADMM OSQP runs (Stellato et al., Math. Prog. Comp. 2020), with the box projection
replaced by the terms' proxes on their rows (a generalised z-update), warm-started from the
previous outer iteration's x, z and y:

    x~  = (Q + sigma I + K'RK)^{-1} (sigma x - p + K'(R (z - s) - y))
    z   = prox_{g/R}(alpha (K x~ + s) + (1 - alpha) z + y / R)      (clip to [l, u] on C's rows)
    y  += R (alpha (K x~ + s) + (1 - alpha) z_old - z),   x = alpha x~ + (1 - alpha) x

``K = [S; C]``; the matrix is inverted when rho or R changes (one batched inverse), so an inner
iteration is a few batched matrix-vector products. It stops when the primal residual
``||Kx + s - z||_inf`` and the dual residual ``||Qx + p + K'y||_inf`` are within the inner
tolerance of :class:`~catopt_dsl.solver.local.base.BatchSolver` (tied to how far the outer
iteration moved the centres, down to a hundredth of the outer tolerance); then the active-set
solve is tried again from the active set it found. R is rebalanced per member from the residuals
(OSQP's rule) when they drift more than 5x apart; equality rows get a 1000x penalty (OSQP's
choice). A member that does not converge in ``SPLIT_MAX_ITER`` iterations (an infeasible
constraint set, a term unbounded below) fails the step, and CVXPY then gives its status.

Why not an interior-point method: it restarts from the centre of the feasible set at every outer
iteration and forms and factors a new matrix at each of its 10-20 iterations; here the expensive
matrices change only with rho, and a settled step is one solve.
"""

from __future__ import annotations

import numpy as np

from catopt_dsl.ir.calculus import CALCULUS
from catopt_dsl.solver.local.base import Accuracy, BatchData, BatchSolver, StepResult

__all__ = ["SPLIT_MAX_ITER", "SplitSolver"]

SPLIT_MAX_ITER = 4000
SIGMA = 1e-6
ALPHA = 1.6
EQ_SCALE = 1e3
ADAPT_EVERY = 25
ADAPT_MOVE = 5.0
CHECK_EVERY = 5
ACTIVE_ROUNDS = 4
#: the active-set solve is tried once the inner tolerance is this tight relative to the data
POLISH_BELOW = 1e-5


def _mv(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.matmul(A, x[:, :, None])[:, :, 0]


#: OpenBLAS runs a GEMM of ``m n k`` multiply-adds on the calling thread up to
#: ``SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD`` = 65536 * 4 (its interface/gemm.c); above it
#: the product is split over its threads, and on a busy machine the caller then waits for them a
#: scheduler quantum per call (measured: 10-15 ms instead of 0.02 ms on a loaded 2-core box).
_GEMM_ONE_THREAD = 65536 * 4


def _gemm(X: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``X @ B`` (``X`` ``(k, a)``, ``B`` ``(a, b)`` C-contiguous) in row slices that each stay on
    the calling thread: a BLAS product, without the thread hand-off (an einsum contraction did the
    same without BLAS, ten times slower)."""
    k = X.shape[0]
    step = max(1, _GEMM_ONE_THREAD // max(1, B.shape[0] * B.shape[1]))
    if k <= step:
        return X @ B
    return np.concatenate([X[i : i + step] @ B for i in range(0, k, step)])


def _take(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``arr[rows]``, without the copy when ``rows`` are all of them in order."""
    if rows.size == arr.shape[0] and (rows.size == 0 or (rows[0] == 0 and rows[-1] == rows.size - 1)):
        if np.array_equal(rows, np.arange(rows.size)):
            return arr
    return arr[rows]


def _constraint_rows(data: BatchData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The constraint rows ``C`` with their bounds ``l``, ``u`` (batched) and which are equalities.

    Equalities first, then one box row per coordinate bounded in some member, then the other
    inequality rows with ``+-a'x <= r`` pairs merged into one interval row ``-r' <= a'x <= r``.
    """
    g = data.group
    A_eq, b_eq = data.take(g.A_eq), data.take(g.b_eq)
    A_in, b_in = data.take(g.A_in), data.take(g.b_in)
    lo, hi, general = data.take(g.lo), data.take(g.hi), data.take(g.general)
    k, n = data.k, data.n
    rows, lows, ups = [A_eq], [b_eq], [b_eq]
    boxed = np.flatnonzero(np.isfinite(lo).any(axis=0) | np.isfinite(hi).any(axis=0))
    if boxed.size:
        unit = np.zeros((boxed.size, n))
        unit[np.arange(boxed.size), boxed] = 1.0
        rows.append(np.broadcast_to(unit, (k, boxed.size, n)))
        lows.append(lo[:, boxed])
        ups.append(hi[:, boxed])
    # the rows that are bounds in every member are the box rows already
    keep = np.flatnonzero(general.any(axis=0))
    Ag, bg = A_in[:, keep], b_in[:, keep]
    by_bytes: dict[bytes, int] = {}
    pair = np.full(keep.size, -1)
    for i in range(keep.size):
        col = np.ascontiguousarray(Ag[:, i]) + 0.0  # + 0.0: one key for 0.0 and -0.0
        twin = by_bytes.get((0.0 - col).tobytes())
        if twin is not None and pair[twin] < 0:
            pair[twin], pair[i] = i, twin
        else:
            by_bytes.setdefault(col.tobytes(), i)
    single = [i for i in range(keep.size) if pair[i] < 0]
    merged = [i for i in range(keep.size) if pair[i] > i]
    if single:
        rows.append(Ag[:, single])
        lows.append(np.full((k, len(single)), -np.inf))
        ups.append(bg[:, single])
    if merged:
        twins = [int(pair[i]) for i in merged]
        rows.append(Ag[:, merged])
        lows.append(-bg[:, twins])
        ups.append(bg[:, merged])
    C = np.concatenate([np.asarray(r, dtype=np.float64) for r in rows], axis=1)
    is_eq = np.zeros(C.shape[1], dtype=bool)
    is_eq[: A_eq.shape[1]] = True
    return C, np.concatenate(lows, axis=1), np.concatenate(ups, axis=1), is_eq


class SplitSolver(BatchSolver):
    """Quadratic + proximable terms + linear (in)equalities: active-set solves and inner ADMM."""

    method = "split"

    def __init__(self, data: BatchData, accuracy: Accuracy | None = None) -> None:
        super().__init__(data, accuracy)
        g = data.group
        self.P, self.q = data.take(g.P), data.take(g.q)
        k, n = data.k, data.n
        blocks: list[tuple[str, float, slice, np.ndarray, bool]] = []  # atom, M, rows, weights, elementwise
        S_parts, s_parts = [], []
        start = 0
        for t in data.terms():
            calc = CALCULUS[t.atom]
            if calc.prox is None:
                raise ValueError(f"`{t.atom}` has no closed-form prox")
            m = t.A.shape[1]
            blocks.append((t.atom, t.M, slice(start, start + m), calc.sign * t.w, calc.kind == "elementwise"))
            S_parts.append(t.A)
            s_parts.append(t.b)
            start += m
        self.blocks = blocks
        self.n_terms = start
        C, lc, uc, eq = _constraint_rows(data)
        self.K = np.ascontiguousarray(np.concatenate([*S_parts, C], axis=1)) if S_parts else np.ascontiguousarray(C)
        self.KT = np.ascontiguousarray(np.swapaxes(self.K, 1, 2))
        # rows that are the same for every member (bounds, ramp rows): one GEMM per product
        self._K0 = self.K[0].copy() if k and bool((self.K[:1] == self.K).all()) else None
        self._K0T = None if self._K0 is None else np.ascontiguousarray(self._K0.T)
        self.s = np.concatenate([*s_parts, np.zeros((k, C.shape[1]))], axis=1)
        self.l = np.concatenate([np.full((k, start), -np.inf), lc], axis=1)
        self.u = np.concatenate([np.full((k, start), np.inf), uc], axis=1)
        self.is_eq = np.concatenate([np.zeros(start, dtype=bool), eq])
        self.MtM = data.MtM()
        mk = self.K.shape[1]
        self.Z = np.zeros((k, mk))
        self.Y = np.zeros((k, mk))
        self.R = np.ones(k)  # the inner penalty per member (equality rows: EQ_SCALE x)
        self._Finv = np.zeros((k, n, n))
        self._key = np.full(k, np.nan)  # the outer rho each member's inverse was built for
        self._started = np.zeros(k, dtype=bool)
        # the active-set solve (objectives without terms): Q^-1 and C Q^-1 C' per rho
        self.polish = start == 0
        self._Qinv: np.ndarray | None = None
        self._S: np.ndarray | None = None
        self._polish_rho: float | None = None
        #: per member: the latest active set, its masked system's inverse, and whether that is valid
        self._act: np.ndarray | None = None
        self._act_inv: np.ndarray | None = None
        self._act_ok = np.zeros(data.k, dtype=bool)
        finite = np.isfinite(self.P).all(axis=(1, 2)) & np.isfinite(self.q).all(axis=1) & np.isfinite(self.K).all(axis=(1, 2))
        self.reject(~finite, "non-finite data")
        self.reject(np.any(self.l > self.u, axis=1), "constraint rows with lower > upper bound")
        if n > 2000:
            self.reject(np.ones(k, dtype=bool), "too many variables for dense inner systems")
        #: inner ADMM iterations of the latest step (the largest over the members), for reports
        self.iterations = 0
        self.polished = 0

    # -- matrices ---------------------------------------------------------------------------------
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
        F = Q + SIGMA * np.eye(n) + np.matmul(self.KT[members], K * R[:, :, None])
        with np.errstate(all="ignore"):
            try:
                self._Finv[members] = np.linalg.inv(F)
            except np.linalg.LinAlgError:  # a singular one must not take the others down
                for i, member in enumerate(members):
                    try:
                        self._Finv[member] = np.linalg.inv(F[i])
                    except np.linalg.LinAlgError:
                        self._Finv[member] = np.nan
        self._key[members] = rho

    def _initial_R(self, members: np.ndarray, rho: float) -> None:
        """A first inner penalty on the scale of the objective's curvature per unit of row."""
        Q = self.P[members] + rho * self.MtM[members]
        diag = np.abs(np.einsum("kii->ki", Q)).mean(axis=1)
        rows = np.einsum("kmn,kmn->k", self.K[members], self.K[members]) / max(1, self.K.shape[1])
        self.R[members] = np.clip(np.where(rows > 0, diag / np.maximum(rows, 1e-300), 1.0), 1e-6, 1e6)

    def _prepare_polish(self, rho: float) -> None:
        if self._polish_rho == rho:
            return
        Q = self.P + rho * self.MtM
        with np.errstate(all="ignore"):
            try:
                Qinv = np.linalg.inv(Q)
            except np.linalg.LinAlgError:
                Qinv = np.full_like(Q, np.nan)
        self._Qinv = Qinv
        self._S = np.matmul(self.K, np.matmul(Qinv, self.KT))
        self._polish_rho = rho
        m = self.K.shape[1]
        self._act = np.zeros((self.data.k, m), dtype=bool)
        self._act_inv = np.broadcast_to(np.eye(m), (self.data.k, m, m)).copy()  # the empty set's
        self._act_ok = np.ones(self.data.k, dtype=bool)

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

    # -- the active-set solve ----------------------------------------------------------------------
    def _active_solve(
        self, members: np.ndarray, p: np.ndarray, Z: np.ndarray, Y: np.ndarray, move: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The exact solution for the active sets read off (Z, Y): (X, lambda, verified, active).

        The guess is corrected for up to ``ACTIVE_ROUNDS`` rounds, as a primal-dual active-set
        method would: a violated row joins the set at the bound it crosses, a row whose multiplier
        has the wrong sign leaves it. Active rows that depend on each other (a generator at its
        bound two hours running, with the ramp row between them) would make the system singular:
        a tiny diagonal keeps it solvable (x is still exact; the multipliers are then one of the
        valid choices, and a wrong-signed one sends its row out in the next round).
        """
        assert self._Qinv is not None and self._S is not None and self._act is not None and self._act_inv is not None
        k, m = members.size, self.K.shape[1]
        eq = self.is_eq
        low = (Z - self.l[members] < -Y) | eq
        up = (u_all := self.u[members]) - Z < Y
        up &= ~low
        x0 = -_mv(_take(self._Qinv, members), p)
        Kx0 = self._Kx(members, x0)
        tol_p = self.accuracy.inner(np.zeros(k), np.maximum(np.abs(Kx0).max(axis=1, initial=0.0), 1.0))
        tol_d = self.accuracy.inner(np.zeros(k), np.maximum(np.abs(p).max(axis=1, initial=0.0), 1.0))
        verified = np.zeros(k, dtype=bool)
        X = x0.copy()
        lam = np.zeros((k, m))
        todo = np.arange(k)  # positions (into members) still to solve
        for _ in range(ACTIVE_ROUNDS):
            mem = members[todo]
            act = low[todo] | up[todo]
            # The masked system: a new active set is solved directly; one seen at the previous step
            # too gets its inverse, kept while the set stays (at convergence: every step a product)
            same = np.all(act == self._act[mem], axis=1)
            invert = same & ~self._act_ok[mem]
            direct = ~same
            if invert.any():
                sel = mem[invert]
                with np.errstate(all="ignore"):
                    try:
                        self._act_inv[sel] = np.linalg.inv(self._masked(sel, act[invert]))
                    except np.linalg.LinAlgError:
                        self._act_inv[sel] = np.nan
                self._act_ok[sel] = True
            lo_t, up_t = low[todo], up[todo]
            l, u = self.l[mem], u_all[todo]
            rhs = np.where(act, Kx0[todo] - np.where(lo_t, l, u), 0.0)
            with np.errstate(all="ignore"):
                lam_r = np.zeros_like(rhs)
                kept = ~direct
                if kept.any():
                    lam_r[kept] = _mv(self._act_inv[mem[kept]], rhs[kept])
                if direct.any():
                    sel = mem[direct]
                    try:
                        lam_r[direct] = np.linalg.solve(self._masked(sel, act[direct]), rhs[direct][:, :, None])[:, :, 0]
                    except np.linalg.LinAlgError:
                        lam_r[direct] = np.nan
                    self._act[sel] = act[direct]
                    self._act_ok[sel] = False
                lam_r = np.where(act, lam_r, 0.0)
                X_r = x0[todo] - _mv(_take(self._Qinv, mem), self._KTy(mem, lam_r))
                KX = self._Kx(mem, X_r)
            over = u + tol_p[todo, None] < KX
            under = l - tol_p[todo, None] > KX
            wrong = (up_t & ~eq & (lam_r < -tol_d[todo, None])) | (lo_t & ~eq & (lam_r > tol_d[todo, None]))
            good = ~(over | under | wrong).any(axis=1) & np.isfinite(X_r).all(axis=1) & np.isfinite(lam_r).all(axis=1)
            hit = todo[good]
            X[hit], lam[hit] = X_r[good], lam_r[good]
            verified[hit] = True
            if good.all():
                break
            # the next guess: violated rows join at the bound they cross, wrong-signed ones leave
            miss = ~good
            up[todo[miss]] = (up_t[miss] & ~wrong[miss]) | over[miss]
            low[todo[miss]] = (lo_t[miss] & ~wrong[miss]) | under[miss] | eq
            todo = todo[miss]
        return X, lam, verified, low | up

    # With one K for every member the products are one matrix product for the batch, cut into
    # slices small enough for the BLAS to run each on the calling thread (`_gemm`).
    def _Kx(self, members: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``K x`` per member."""
        if self._K0T is not None:
            return _gemm(X, self._K0T)
        return _mv(_take(self.K, members), X)

    def _KTy(self, members: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``K' y`` per member."""
        if self._K0 is not None:
            return _gemm(Y, self._K0)
        return _mv(_take(self.KT, members), Y)

    def _masked(self, sel: np.ndarray, act: np.ndarray) -> np.ndarray:
        """``C Q^-1 C'`` of members ``sel`` with the inactive rows replaced by identity rows (and a
        tiny diagonal on the active ones, for active rows that depend on each other)."""
        assert self._S is not None
        m = self.K.shape[1]
        a = act.astype(np.float64)
        S = self._S[sel]
        shift = 1e-10 * np.maximum(1.0, np.abs(S).max(axis=(1, 2)))
        return S * a[:, :, None] * a[:, None, :] + np.eye(m) * ((1.0 - a) + shift[:, None] * a)[:, None, :]

    # -- one x-update ----------------------------------------------------------------------------
    def solve(self, D: np.ndarray, rho: float, members: np.ndarray) -> StepResult:
        move = self.tolerance(D, rho, members)
        k = members.size
        why: dict[int, str] = {}
        live = self.accepted[members].copy()
        for i in np.flatnonzero(~live):
            why[int(i)] = self.rejected.get(int(members[i]), "not taken by this batch")
        M = self.data.M[members]
        p = self.q[members] - rho * np.matmul(D[:, None, :], M)[:, 0, :]
        X = self.X[members].copy()
        Z, Y = self.Z[members].copy(), self.Y[members].copy()
        ok = np.zeros(k, dtype=bool)
        self.iterations = 0
        # While the outer iteration moves a lot, the inner tolerance is loose and a few warm inner
        # ADMM iterations meet it; the exact active-set solve pays off once the tolerance is tight
        # (and the active sets have settled, so the warm guess is right)
        scale = np.maximum(np.abs(p).max(axis=1, initial=0.0), 1.0)
        tight = self.accuracy.inner(move, scale) <= POLISH_BELOW * scale
        if self.polish and (tight & live).any():
            self._prepare_polish(rho)
            sel = np.flatnonzero(tight & live)
            Xp, lam, verified, _ = self._active_solve(members[sel], p[sel], Z[sel], Y[sel], move[sel])
            good = np.zeros(k, dtype=bool)
            good[sel[verified]] = True
            Xp_full, lam_full = np.zeros_like(X), np.zeros_like(Y)
            Xp_full[sel], lam_full[sel] = Xp, lam
            Xp, lam = Xp_full, lam_full
            X[good] = Xp[good]
            Z[good] = np.clip(self._Kx(members[good], Xp[good]), self.l[members[good]], self.u[members[good]])
            Y[good] = lam[good]
            ok |= good
            self.polished = int(good.sum())
        run = np.flatnonzero(live & ~ok)
        if run.size:
            sub = members[run]
            Xr, Zr, Yr, conv, its = self._admm(sub, D[run], p[run], rho, move[run], X[run], Z[run], Y[run])
            self.iterations = its
            again = conv & tight[run]  # exactness pays only where the tolerance is tight
            if self.polish and again.any():
                self._prepare_polish(rho)
                jj = np.flatnonzero(again)
                Xp, lam, verified, _ = self._active_solve(sub[jj], p[run][jj], Zr[jj], Yr[jj], move[run][jj])
                hit = jj[verified]
                Xr[hit], Yr[hit] = Xp[verified], lam[verified]
                Zr[hit] = np.clip(self._Kx(sub[hit], Xp[verified]), self.l[sub[hit]], self.u[sub[hit]])
            X[run], Z[run], Y[run] = Xr, Zr, Yr
            ok[run] = conv
            for j in np.flatnonzero(~conv):
                why[int(run[j])] = f"the inner ADMM did not converge in {its} iterations"
        ok &= np.isfinite(X).all(axis=1)
        # keep the warm start of the members that were solved (the others restart from where they were)
        self.Z[members[ok]] = Z[ok]
        self.Y[members[ok]] = Y[ok]
        return StepResult(X, ok, why)

    def _admm(
        self,
        members: np.ndarray,
        D: np.ndarray,
        p: np.ndarray,
        rho: float,
        move: np.ndarray,
        X: np.ndarray,
        Z: np.ndarray,
        Y: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        fresh = members[~self._started[members]]
        if fresh.size:
            self._initial_R(fresh, rho)
            self._started[fresh] = True
        self._factor(members[self._key[members] != rho], rho)
        s = self.s[members]
        Q = self.P[members] + rho * self.MtM[members]
        R = self._rows_R(members)
        Rinv = 1.0 / R
        Finv = self._Finv[members]
        done = np.zeros(members.size, dtype=bool)
        converged = np.zeros(members.size, dtype=bool)
        acc = self.accuracy
        it = 0
        some_done = False
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for it in range(1, SPLIT_MAX_ITER + 1):
                W = R * (Z - s) - Y
                rhs = SIGMA * X - p + self._KTy(members, W)
                Xt = _mv(Finv, rhs)
                Zhat = ALPHA * (self._Kx(members, Xt) + s) + (1.0 - ALPHA) * Z
                Znew = self._z_update(Zhat + Y * Rinv, R, members)
                # a member that has converged stops: its answer must not depend on which other
                # members share its batch (a node's batch is a slice of the family)
                if some_done:
                    run = ~done[:, None]
                    Y = np.where(run, Y + R * (Zhat - Znew), Y)
                    X = np.where(run, ALPHA * Xt + (1.0 - ALPHA) * X, X)
                    Z = np.where(run, Znew, Z)
                else:  # every member still running (the usual case): no masking
                    Y = Y + R * (Zhat - Znew)
                    X = ALPHA * Xt + (1.0 - ALPHA) * X
                    Z = Znew
                if it % CHECK_EVERY and it != 1:
                    continue
                KX = self._Kx(members, X) + s
                Kty = self._KTy(members, Y)
                QX = _mv(Q, X)
                r_p = np.abs(KX - Z).max(axis=1, initial=0.0)
                r_d = np.abs(QX + p + Kty).max(axis=1, initial=0.0)
                s_p = np.maximum(np.abs(KX).max(axis=1, initial=0.0), np.abs(Z).max(axis=1, initial=0.0))
                s_d = np.maximum.reduce([np.abs(QX).max(axis=1, initial=0.0), np.abs(p).max(axis=1, initial=0.0),
                                         np.abs(Kty).max(axis=1, initial=0.0)])
                good = (r_p <= acc.inner(move, s_p)) & (r_d <= acc.inner(move, s_d)) & np.isfinite(X).all(axis=1)
                converged |= good & ~done
                done |= good
                if done.all():
                    break
                some_done = bool(done.any())
                if it % ADAPT_EVERY == 0:
                    # OSQP's rule, per member: rebalance R when the normalised residuals drift apart
                    ratio = (r_p / np.maximum(s_p, 1e-12)) / np.maximum(r_d / np.maximum(s_d, 1e-12), 1e-12)
                    factor = np.sqrt(np.clip(ratio, 1e-12, 1e12))
                    shift = ~done & np.isfinite(factor) & ((factor > ADAPT_MOVE) | (factor < 1.0 / ADAPT_MOVE))
                    if shift.any():
                        sel = members[shift]
                        self.R[sel] = np.clip(self.R[sel] * factor[shift], 1e-8, 1e8)
                        self._factor(sel, rho)
                        R = self._rows_R(members)
                        Rinv = 1.0 / R
                        Finv = self._Finv[members]
        return X, Z, Y, converged, it
