"""LocalWorker: one object's compiled prox problem (the x-update), plus the batched fast path.

Protocol (what a distributed runtime sends; see also ``coordinator.py``):

* coordinator -> worker, every iteration: ``centres`` d_i (float64 vector of the object's row
  count r_i, layout in ``layout.py``) and ``rho`` (float).
* worker -> coordinator: a :class:`LocalReport`: ``a`` = M_i x_i + e_i (r_i floats), the local
  objective value f_i(x_i), and a status (``"ok"``, ``"infeasible"``, ``"unbounded"``,
  ``"failed"``) with a message naming the object and the CVXPY status.

The x-update is

    x_i = argmin_x f_i(x) + rho/2 ||M_i x - d_i||^2   s.t. the object's constraints

(d_i = t_i - u_i - e_i, so this is ``rho/2 sum_links ||x[var] - z + u||^2 + rho/2 sum_terms
||B_t x + b_t - y_t + w_t||^2``).

Two implementations:

* CVXPY, compiled once per object with parameters ``s = sqrt(rho)`` and ``s*d`` so the prox term
  is ``1/2 ||s*(M x) - s*d||^2`` (DPP: re-solves skip canonicalisation). Solved with Clarabel.
* Fast path (closed form) when ``quadratic.py`` finds f quadratic and the constraints linear
  equalities ``G x = h``: the KKT system ``[[P + rho M'M, G'], [G, 0]]`` is solved once per rho for
  the affine map ``x = c0 + L d``; each step is one matrix-vector product. :class:`FastBatch`
  stacks the maps of same-shaped workers and applies them with one ``einsum``. Objects with
  ``n + p > FAST_MAX_SIZE`` use CVXPY (dense maps would be too large).
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.linalg
import scipy.sparse as sp

from catopt_dsl.ir.analysis import ObjectAnalysis, QuadraticForm, analyze_object
from catopt_dsl.ir.model import IRObject
from catopt_dsl.solver.certificate import CertificateAnswer, CertificateQuery, recession_slope
from catopt_dsl.solver.cvx import solve_problem, stacked_views, to_cvxpy

__all__ = ["LocalReport", "LocalWorker", "FastBatch", "FAST_MAX_SIZE", "unbounded_note"]

FAST_MAX_SIZE = 2000


@dataclass(frozen=True, eq=False)
class LocalReport:
    """What one worker reports after its x-update."""

    object: str
    a: np.ndarray  # M_i x_i + e_i
    objective: float
    status: str = "ok"  # "ok" | "infeasible" | "unbounded" | "failed"
    message: str = ""
    # max(||P x_i||_inf, ||q||_inf) when the worker's objective is quadratic (on either path), else 0.
    # The coordinator's rho adaptation uses it as OSQP uses max(||Px||, ||q||) in its dual
    # normalisation: a scale that does not shrink with rho (the scaled duals do), so a tiny initial
    # rho is recognised as tiny in the first iterations instead of after dozens.
    grad_scale: float = 0.0
    #: the stacked x itself (the coordinator watches its successive differences for unboundedness)
    x: np.ndarray | None = None
    #: the answer to the certificate query of the previous broadcast, if there was one
    answer: CertificateAnswer | None = None
    #: set when the object's objective is unbounded below along a direction that moves none of
    #: its rows: the plan is unbounded if it is feasible (the coordinator decides)
    unbounded: str = ""

def unbounded_note(name: str) -> str:
    """The message of an object whose objective is unbounded below along a direction that moves
    none of its rows (one text for every runtime: the protocol carries only the flag)."""
    return (
        f"object `{name}`: its objective is unbounded below over its own constraints, along a "
        "direction that changes none of its links"
    )


def _classify(status: str) -> str:
    if status in ("optimal", "optimal_inaccurate"):
        return "ok"
    if status in ("infeasible", "infeasible_inaccurate"):
        return "infeasible"
    if status in ("unbounded", "unbounded_inaccurate"):
        return "unbounded"
    return "failed"


class LocalWorker:
    """One object's x-update. ``step(centres, rho) -> x`` then ``contribution()``."""

    def __init__(
        self,
        obj: IRObject,
        M: np.ndarray,
        e: np.ndarray,
        *,
        fast_path: bool = True,
        analysis: ObjectAnalysis | None = None,
    ) -> None:
        self.obj = obj
        self.name = obj.name
        self.n = obj.n
        self.M = np.asarray(M, dtype=np.float64)
        self.e = np.asarray(e, dtype=np.float64)
        self.r = self.M.shape[0]
        self.params = {p.name: np.asarray(p.value, dtype=np.float64) for p in obj.params}
        self.x = np.zeros(self.n)
        self.status = "ok"
        self.message = ""
        #: the object's forms and solver class, from the IR analysis (``catopt_dsl.ir.analysis``)
        self.analysis = analysis if analysis is not None else analyze_object(obj)
        self.quad: QuadraticForm | None = None
        self.G = np.zeros((0, self.n))
        self.h = np.zeros(0)
        self._fast_rho: float | None = None
        self.c0 = np.zeros(self.n)
        self.L = np.zeros((self.n, self.r))
        self.lo = np.full(self.n, -np.inf)
        self.hi = np.full(self.n, np.inf)
        self.boxed = False
        # The objective's quadratic model, when it has one, whatever the path: its scale feeds the
        # coordinator's rho adaptation, which must not depend on which path solves the x-update.
        self._scale_quad = self.analysis.objective
        if fast_path:
            self._try_fast()
        self.fast = self.quad is not None
        # The CVXPY model (prox solves, objective values off the fast path, support queries for
        # infeasibility certificates) is built on first use: fast-path objects usually never need
        # it, and building it was half the set-up time of a 64-site consensus lasso.
        self._cvx: tuple[cp.Variable, cp.Expression, list[cp.Constraint]] | None = None
        self._prox: cp.Problem | None = None
        self._support: cp.Problem | None = None
        self._lineality: np.ndarray | bool | None = None
        #: local solves CVXPY flagged as inaccurate (reported only if the run is not verified)
        self.inaccurate = 0
        #: why the object is unbounded below on its own, once its prox said so (see ``step``)
        self.unbounded = ""
        self._solved_once = False

    def _model(self) -> tuple[cp.Variable, cp.Expression, list[cp.Constraint]]:
        if self._cvx is None:
            xv = cp.Variable(self.n, name="x")
            views = stacked_views(xv, self.obj.vars)
            f = to_cvxpy(self.obj.objective, views, self.params)
            f = f if isinstance(f, cp.Expression) else cp.Constant(np.asarray(f, dtype=np.float64))
            cons: list[cp.Constraint] = []
            for con in self.obj.constraints:
                lhs = to_cvxpy(con.lhs, views, self.params)
                rhs = to_cvxpy(con.rhs, views, self.params)
                if not isinstance(lhs, cp.Expression):
                    lhs = cp.Constant(np.asarray(lhs, dtype=np.float64))
                cons.append(lhs <= rhs if con.op == "<=" else lhs >= rhs if con.op == ">=" else lhs == rhs)
            self._cvx = (xv, f, cons)
        return self._cvx

    @property
    def _xv(self) -> cp.Variable:
        return self._model()[0]

    @property
    def _f(self) -> cp.Expression:
        return self._model()[1]

    @property
    def _cons(self) -> list[cp.Constraint]:
        return self._model()[2]

    # -- fast path -------------------------------------------------------------------------
    def _try_fast(self) -> None:
        a = self.analysis
        if self.n == 0 or a.solver_class not in ("closed_form_qp", "box_qp"):
            return
        quad, cons = a.objective, a.constraints
        assert quad is not None and cons is not None
        G, h = cons.A_eq, cons.b_eq
        boxed = a.solver_class == "box_qp"
        if boxed:
            # Bounds make the prox step a clip only when it is separable: a diagonal objective
            # Hessian and a diagonal M'M (each coordinate in at most one row).
            if np.any(cons.lo > cons.hi):
                return  # infeasible bounds: CVXPY gives the honest answer
            MtM = self.M.T @ self.M
            if not quad.separable or np.count_nonzero(MtM - np.diag(np.diag(MtM))):
                return
        if self.n + G.shape[0] > FAST_MAX_SIZE:
            return
        P = 0.5 * (quad.P + quad.P.T)
        if G.shape[0] and np.linalg.matrix_rank(G) < G.shape[0]:
            return  # redundant or inconsistent equalities: CVXPY gives an honest status
        H = P + self.M.T @ self.M + G.T @ G
        if np.linalg.eigvalsh(H).min(initial=1.0) <= 1e-10 * max(1.0, float(np.abs(H).max(initial=0.0))):
            return  # a free direction: the local problem may be unbounded; CVXPY decides
        self.quad = QuadraticForm(P, quad.q, quad.r)
        self.G, self.h = G, h
        self.lo, self.hi, self.boxed = cons.lo, cons.hi, boxed

    def prepare(self, rho: float) -> None:
        """(Re)factor the KKT system for this rho (fast path only; cached until rho changes)."""
        if self.quad is None or self._fast_rho == rho:
            return
        n, p = self.n, self.G.shape[0]
        K = np.zeros((n + p, n + p))
        K[:n, :n] = self.quad.P + rho * (self.M.T @ self.M)
        K[:n, n:] = self.G.T
        K[n:, :n] = self.G
        rhs = np.zeros((n + p, 1 + self.r))
        rhs[:n, 0] = -self.quad.q
        rhs[n:, 0] = self.h
        rhs[:n, 1:] = rho * self.M.T
        sol = scipy.linalg.solve(K, rhs, assume_a="sym" if p else "pos")
        self.c0 = np.ascontiguousarray(sol[:n, 0])
        self.L = np.ascontiguousarray(sol[:n, 1:])
        self._fast_rho = rho

    # -- the x-update ------------------------------------------------------------------------
    def _build_prox(self, with_objective: bool = True) -> cp.Problem:
        self._s = cp.Parameter(nonneg=True, name="sqrt_rho", value=1.0)
        self._sd = cp.Parameter(self.r, name="sqrt_rho_centres", value=np.zeros(self.r))
        objective: cp.Expression = self._f if with_objective else cp.Constant(0.0)
        if self.r:
            M = sp.csr_matrix(self.M)
            objective = objective + 0.5 * cp.sum_squares(self._s * (M @ self._xv) - self._sd)
        # without f, f's domain still bounds where x may go (a point outside it is not feasible)
        cons = self._cons if with_objective else self._cons + list(self._f.domain)
        return cp.Problem(cp.Minimize(objective), cons)

    def step(self, centres: np.ndarray, rho: float) -> np.ndarray:
        """x-update for the given centres d_i and rho; returns the stacked x (also kept in ``x``)."""
        centres = np.asarray(centres, dtype=np.float64)
        if self.fast:
            self.prepare(rho)
            self.x = self.c0 + self.L @ centres
            if self.boxed:  # separable: the bounded minimiser is the clipped free one
                self.x = np.clip(self.x, self.lo, self.hi)
            self.status, self.message = "ok", ""
            return self.x
        if self.r == 0 and self._solved_once and self.status == "ok":
            return self.x  # nothing links this object: its x never changes
        if self._prox is None:
            self._prox = self._build_prox()
        if self.r:
            s = float(np.sqrt(rho))
            self._s.value = s
            self._sd.value = s * centres
        self._xv.value = self.x
        status, inaccurate = solve_problem(self._prox)
        self.inaccurate += inaccurate
        self._solved_once = True
        kind = _classify(status)
        if kind == "unbounded" and not self.unbounded:
            # The prox is unbounded below only along a direction d of C_i with M_i d = 0 (the
            # prox term grows along any other): f_i falls without end and no row notices. So the
            # plan is unbounded *if it is feasible*, infeasible otherwise. Carry on with f_i set
            # aside (the plan's feasibility does not depend on it): the coordinator claims
            # `unbounded` once ADMM converges, or `infeasible` if a certificate says so.
            self.unbounded = unbounded_note(self.name)
            self._prox = self._build_prox(with_objective=False)
            return self.step(centres, rho)
        if kind == "ok" and self._xv.value is not None:
            self.x = np.asarray(self._xv.value, dtype=np.float64).copy()
            self.status, self.message = "ok", ""
        else:
            self.status = kind if kind != "ok" else "failed"
            self.message = f"object `{self.name}`: local solve returned CVXPY status `{status}`"
        return self.x

    def set_x(self, x: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=np.float64).copy()

    def objective_value(self, x: np.ndarray | None = None) -> float:
        """f_i(x) (at the current x by default)."""
        x = self.x if x is None else np.asarray(x, dtype=np.float64)
        if self.quad is not None:
            return self.quad.value(x)
        self._xv.value = x
        val = self._f.value
        return float("nan") if val is None else float(val)

    def contribution(self, answer: CertificateAnswer | None = None) -> LocalReport:
        a = self.M @ self.x + self.e
        objective = self.objective_value() if self.status == "ok" else float("nan")
        grad = 0.0
        q = self._scale_quad
        if q is not None and self.status == "ok":
            grad = max(float(np.abs(q.P @ self.x).max(initial=0.0)), float(np.abs(q.q).max(initial=0.0)))
        return LocalReport(
            self.name, a, objective, self.status, self.message, grad, self.x.copy(), answer, self.unbounded
        )

    def lineality(self) -> np.ndarray | None:
        """A basis of the directions along which the object's feasible set extends both ways:
        all of R^n without constraints, the null space of the constraint rows when they are affine,
        None when unknown (non-affine constraints, or an objective with a restricted domain)."""
        if self._lineality is None:
            cons = self.analysis.constraints
            basis: np.ndarray | bool = False
            if cons is not None and self.analysis.full_domain:
                K = np.vstack([cons.A_eq, cons.A_in])
                K = K[np.abs(K).max(axis=1, initial=0.0) > 0.0] if K.shape[0] else K
                if K.shape[0] == 0:
                    basis = np.eye(self.n)
                else:
                    _, sv, vt = np.linalg.svd(K, full_matrices=True)
                    rank = int(np.sum(sv > 1e-12 * max(float(sv.max(initial=0.0)), 1e-300)))
                    basis = vt[rank:].T.copy()
            self._lineality = basis
        return None if self._lineality is False else self._lineality  # type: ignore[return-value]

    def answer(self, query: CertificateQuery | None) -> CertificateAnswer | None:
        """Verify this object's part of a candidate certificate (``certificate.py``)."""
        if query is None:
            return None
        support = None if query.lam is None else self.support(query.lam)
        slope = None if query.direction is None else self.recession(query.direction)
        basis = self.lineality() if query.want_lineality else None
        return CertificateAnswer(query.qid, support, slope, basis)

    def recession(self, d: np.ndarray) -> float | None:
        """The objective's slope along d when d is a recession direction of this object (its
        objective quadratic, its constraints affine); None when it is not one or cannot be shown."""
        quad, cons = self.analysis.objective, self.analysis.constraints
        if quad is None or cons is None:
            return None
        return recession_slope(0.5 * (quad.P + quad.P.T), quad.q, cons.A_eq, cons.A_in, d)

    def support(self, c: np.ndarray) -> float:
        """``min c'(M x + e)`` over the object's constraint set (``-inf`` when unbounded).

        Used to verify a coupling infeasibility certificate; ``c`` is over the object's rows.
        """
        c = np.asarray(c, dtype=np.float64)
        if self._support is None:
            self._cvec = cp.Parameter(self.n, name="support_dir")
            # f's domain counts: `minimize -log(x)` keeps x > 0 even without a constraint saying so
            self._support = cp.Problem(cp.Minimize(self._cvec @ self._xv), self._cons + list(self._f.domain))
        cvec = self.M.T @ c
        basis = self.lineality()
        if basis is not None and basis.size:
            # Along the lineality space the support is -inf unless cvec is orthogonal to it; the
            # coordinator projected lambda so that it is, up to rounding, which is dropped here.
            along = basis.T @ cvec
            # (queries carry lambda scaled to unit max-norm over the whole plan: 1e-9 is rounding)
            if float(np.abs(along).max(initial=0.0)) <= 1e-9:
                cvec = cvec - basis @ along
        if float(np.abs(cvec).max(initial=0.0)) == 0.0:
            return float(c @ self.e) if self.status == "ok" or not self.obj.constraints else float("nan")
        self._cvec.value = cvec
        if not self._support.constraints:
            return float("-inf")
        status, _ = solve_problem(self._support, warm=False)
        if status in ("unbounded", "unbounded_inaccurate"):
            return float("-inf")
        if status != "optimal":
            return float("nan")
        return float(self._support.value) + float(c @ self.e)


class FastBatch:
    """Applies the fast-path x-updates of many workers at once, grouped by (n, r)."""

    def __init__(self, workers: list[LocalWorker]) -> None:
        self.workers = [w for w in workers if w.fast]
        groups: dict[tuple[int, int], list[LocalWorker]] = {}
        for w in self.workers:
            groups.setdefault((w.n, w.r), []).append(w)
        self.groups = list(groups.values())
        self._rho: float | None = None
        self._C0: list[np.ndarray] = []
        self._L: list[np.ndarray] = []

    def _prepare(self, rho: float) -> None:
        if self._rho == rho:
            return
        self._C0, self._L = [], []
        for group in self.groups:
            for w in group:
                w.prepare(rho)
            self._C0.append(np.stack([w.c0 for w in group]))
            self._L.append(np.stack([w.L for w in group]))
        self._rho = rho

    def step_all(self, centres: dict[str, np.ndarray], rho: float) -> None:
        """x-update of every fast worker (results land in each worker's ``x``)."""
        self._prepare(rho)
        for group, C0, L in zip(self.groups, self._C0, self._L):
            D = np.stack([np.asarray(centres[w.name], dtype=np.float64) for w in group])
            X = C0 + np.einsum("gij,gj->gi", L, D)
            if any(w.boxed for w in group):
                X = np.clip(X, np.stack([w.lo for w in group]), np.stack([w.hi for w in group]))
            for w, x in zip(group, X):
                w.x = x
                w.status, w.message = "ok", ""
