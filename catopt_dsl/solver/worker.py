"""LocalWorker: one object's x-update and its reports; FastBatch: the batched local solvers behind them.

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

Who solves it: the object's IR analysis gives a solver class, and with M_i a method
(``catopt_dsl/solver/local``: closed-form KKT maps, clipped maps, 1-D Newton per coordinate,
Newton with exact Hessians, an inner ADMM for proximable terms and inequalities). Objects are
built by :func:`make_workers`, which stacks the members of one structure into one batch solver;
each worker holds its slot in it (its x lives there: a step of the batch touches no per-object
Python). :class:`FastBatch` steps every batch. Everything else, and any member whose method
fails a step (no convergence, a non-finite value), is solved with CVXPY, compiled once per
object with parameters ``s = sqrt(rho)`` and ``s*d`` so the prox term is ``1/2 ||s*(M x) - s*d||^2``
(DPP: re-solves skip canonicalisation) and solved with Clarabel; CVXPY's status is what the
worker then reports, with the object's name. Fallbacks are counted per object (``fallbacks``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from catopt_dsl.ir.analysis import ObjectAnalysis, analyze_object
from catopt_dsl.ir.model import IRObject
from catopt_dsl.solver.certificate import (
    CertificateAnswer,
    CertificateQuery,
    recession_slope,
)
from catopt_dsl.solver.cvx import solve_problem, stacked_views, to_cvxpy
from catopt_dsl.solver.local import (
    FAST_MAX_SIZE,
    Accuracy,
    BatchData,
    BatchSolver,
    StepResult,
    choose_method,
    make_solver,
)
from catopt_dsl.solver.local.base import choose_methods
from catopt_dsl.solver.local.external import ExternalProx

__all__ = [
    "FAST_MAX_SIZE",
    "FastBatch",
    "LocalReport",
    "LocalWorker",
    "local_solver_summary",
    "make_workers",
    "unbounded_note",
]


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


def _param_names(obj: IRObject) -> set[str]:
    """The params an object's objective and constraints name."""
    from catopt_dsl.ir.model import IRParamRef

    found: set[str] = set()

    def walk(e: object) -> None:
        if isinstance(e, IRParamRef):
            found.add(e.name)
            return
        for attr in ("left", "right", "operand", "base"):
            child = getattr(e, attr, None)
            if child is not None:
                walk(child)
        for child in getattr(e, "args", ()) or getattr(e, "elements", ()):
            walk(child)

    walk(obj.objective)
    for con in obj.constraints:
        walk(con.lhs)
        walk(con.rhs)
    return found


class CvxFamily:
    """One compiled CVXPY prox problem for every object of one structure (family members solved
    by CVXPY): their params are ``cp.Parameter``s set per member before each solve, so the problem
    is canonicalised once for the family, not once per member (DPP).

    The prox term is ``1/2 ||(sqrt(rho) M) x - sqrt(rho) d||^2`` with ``sqrt(rho) M`` one parameter
    (a parameter times the variable keeps the problem DPP; M may differ between members). A
    family whose problem is not DPP this way (a param inside a nonlinear atom) is not shared: each
    member then compiles its own problem, as before.
    """

    def __init__(self, obj: IRObject, n: int, r: int) -> None:
        self.obj, self.n, self.r = obj, n, r
        self._dpp: bool | None = None  # compiled on first use: many families never need CVXPY

    def _build(self) -> None:
        obj, n, r = self.obj, self.n, self.r
        self.params = {
            p.name: cp.Parameter(tuple(p.shape), name=f"param_{p.name}", value=np.asarray(p.value, dtype=np.float64))
            for p in obj.params
        }
        self.xv = cp.Variable(n, name="x")
        views = stacked_views(self.xv, obj.vars)
        f = to_cvxpy(obj.objective, views, self.params)
        f = f if isinstance(f, cp.Expression) else cp.Constant(np.asarray(f, dtype=np.float64))
        cons: list[cp.Constraint] = []
        for con in obj.constraints:
            lhs = to_cvxpy(con.lhs, views, self.params)
            rhs = to_cvxpy(con.rhs, views, self.params)
            if not isinstance(lhs, cp.Expression):
                lhs = cp.Constant(np.asarray(lhs, dtype=np.float64))
            cons.append(lhs <= rhs if con.op == "<=" else lhs >= rhs if con.op == ">=" else lhs == rhs)
        self.sM = cp.Parameter((r, n), name="sqrt_rho_rows", value=np.zeros((r, n)))
        self.sd = cp.Parameter(r, name="sqrt_rho_centres", value=np.zeros(r))
        objective = f + 0.5 * cp.sum_squares(self.sM @ self.xv - self.sd) if r else f
        self.problem = cp.Problem(cp.Minimize(objective), cons)
        # A param that CVXPY needs as a number (quad_form's matrix, a divisor, huber's M) was read
        # as the first member's value when the expression was built: that problem is not the other
        # members' problem. Share only when every param the object names is still a parameter.
        named = _param_names(obj)
        present = {p.name() for p in self.problem.parameters()}
        self._dpp = bool(self.problem.is_dpp()) and all(f"param_{n}" in present for n in named)

    @property
    def dpp(self) -> bool:
        """Whether the shared problem is DPP (built on the first call)."""
        if self._dpp is None:
            try:
                self._build()
            except (ValueError, TypeError):  # a param where CVXPY wants a number: not shareable
                self._dpp = False
        return bool(self._dpp)

    def solve(self, w: LocalWorker, centres: np.ndarray, rho: float) -> tuple[str, int, np.ndarray | None]:
        """Member ``w``'s prox: (CVXPY status, inaccurate count, x or None)."""
        for name, param in self.params.items():
            param.value = w.params[name].reshape(param.shape) if param.shape else float(w.params[name])
        if w.r:
            s = float(np.sqrt(rho))
            self.sM.value = s * w.M
            self.sd.value = s * centres
        self.xv.value = w.x
        status, inaccurate = solve_problem(self.problem)
        x = None if self.xv.value is None else np.asarray(self.xv.value, dtype=np.float64).copy()
        return status, inaccurate, x


#: the x of a worker whose batch holds it (read-only: never written through the worker)
_NO_X = np.zeros(0)
_NO_X.setflags(write=False)


class LocalWorker:
    """One object's x-update. ``step(centres, rho) -> x`` then ``contribution()``.

    Built alone (``LocalWorker(obj, M, e)``) it gets a batch of its own; :func:`make_workers`
    builds many at once, sharing one batch per structure.
    """

    # Defaults every worker starts with, as class attributes (immutable values: an instance
    # assigns its own on the first change). A family of hundreds of members builds hundreds of
    # workers per solve, and most of them never change these.
    status = "ok"
    message = ""
    #: an external loss's adapter-backed x-update (``local/external.py``), or None
    _external: ExternalProx | None = None
    _solver: BatchSolver | None = None
    _slot = 0
    #: steps whose batch solve failed and CVXPY solved instead, and the last reason
    fallbacks = 0
    fallback_reason = ""
    # The CVXPY model (prox solves, objective values off the fast path, support queries for
    # infeasibility certificates) is built on first use: fast-path objects usually never need
    # it, and building it was half the set-up time of a 64-site consensus lasso.
    _cvx: tuple[cp.Variable, cp.Expression, list[cp.Constraint]] | None = None
    _prox: cp.Problem | None = None
    _support: cp.Problem | None = None
    _lineality: np.ndarray | bool | None = None
    #: local solves CVXPY flagged as inaccurate (reported only if the run is not verified)
    inaccurate = 0
    #: why the object is unbounded below on its own, once its prox said so (see ``step``)
    unbounded = ""
    _solved_once = False
    #: the compiled CVXPY problem this object shares with its family (``make_workers``)
    _family: CvxFamily | None = None

    def __init__(
        self,
        obj: IRObject,
        M: np.ndarray,
        e: np.ndarray,
        *,
        fast_path: bool = True,
        analysis: ObjectAnalysis | None = None,
        accuracy: Accuracy | None = None,
        _batched: bool = False,
        _separable_rows: bool | None = None,
        _method: tuple[str, str] | None = None,
    ) -> None:
        self.obj = obj
        self.name = obj.name
        self.M = M if type(M) is np.ndarray and M.dtype == np.float64 else np.asarray(M, dtype=np.float64)
        self.n = self.M.shape[1] if self.M.ndim == 2 else obj.n
        self.e = e if type(e) is np.ndarray and e.dtype == np.float64 else np.asarray(e, dtype=np.float64)
        self.r = self.M.shape[0]
        #: the object's forms and solver class, from the IR analysis (``catopt_dsl.ir.analysis``)
        self.analysis = analysis if analysis is not None else analyze_object(obj)
        self.accuracy = accuracy or Accuracy()
        #: how the x-update is solved (``catopt_dsl.solver.local.METHODS``) and why
        if not fast_path:
            self.method, self.method_reason = "cvxpy", "the fast paths are turned off (fast_path=False)"
        elif self.n == 0:
            self.method, self.method_reason = "cvxpy", "no variables"
        elif _method is not None:  # decided for the whole family at once (make_workers)
            self.method, self.method_reason = _method
        else:
            self.method, self.method_reason = choose_method(
                self.analysis.group, self.analysis.index, self.M, _separable_rows
            )
        if obj.external is not None:
            self._x = np.zeros(self.n)
            self._external = ExternalProx(obj, self.M, tol=min(1e-9, 1e-3 * self.accuracy.eps_abs))
            if obj.external.init:  # a non-convex model's starting point (zero is often a saddle)
                self._x = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for _, a in obj.external.init])
            self.method = "adapter"
            self.method_reason = f"the prox step of adapter `{obj.external.adapter}` on {self._external.device}" + (
                f" ({'; '.join(self._external.notes)})" if self._external.notes else ""
            )
        elif self.method in ("cvxpy", "adapter"):
            self._x = np.zeros(self.n)
        elif not _batched:
            self._x = np.zeros(self.n)
            _attach([self])
        else:  # make_workers attaches it to its family's batch (where its x lives) or gives it one
            self._x = _NO_X

    @classmethod
    def _member(
        cls, obj: IRObject, M: np.ndarray, e: np.ndarray, analysis: ObjectAnalysis, accuracy: Accuracy, method: tuple[str, str]
    ) -> LocalWorker:
        """A family member whose batch method :func:`make_workers` chose (no external loss, vars,
        float64 ``M`` and ``e``): what ``__init__`` would set for it, assigned at once, its x left
        to the batch ``_attach`` gives it (hundreds of members per solve)."""
        w = cls.__new__(cls)
        w.__dict__.update(
            obj=obj, name=obj.name, M=M, n=M.shape[1], e=e, r=M.shape[0], analysis=analysis, accuracy=accuracy,
            method=method[0], method_reason=method[1], _x=_NO_X,
        )
        return w

    @cached_property
    def params(self) -> dict[str, np.ndarray]:
        """The object's params (for its CVXPY model, built only when needed)."""
        return {p.name: np.asarray(p.value, dtype=np.float64) for p in self.obj.params}

    # -- where x lives ---------------------------------------------------------------------------
    @property
    def fast(self) -> bool:
        """Whether a batch method (not CVXPY) solves this object's x-updates."""
        return self._solver is not None

    @property
    def x(self) -> np.ndarray:
        return self._solver.X[self._slot] if self._solver is not None else self._x

    @x.setter
    def x(self, value: np.ndarray) -> None:
        if self._solver is not None:
            self._solver.X[self._slot] = value
        else:
            self._x = np.asarray(value, dtype=np.float64)

    def set_x(self, x: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=np.float64).copy()

    def _detach(self, why: str) -> None:
        """Leave the batch for good: CVXPY solves every later step (x moves to the worker)."""
        if self._solver is not None:
            x = self.x.copy()
            self._solver = None
            self._x = x
            self.method, self.method_reason = "cvxpy", why

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

    # -- the x-update ------------------------------------------------------------------------
    def step(self, centres: np.ndarray, rho: float) -> np.ndarray:
        """x-update for the given centres d_i and rho; returns the stacked x (also kept in ``x``)."""
        centres = np.asarray(centres, dtype=np.float64)
        if self._external is not None:
            return self._adapter_step(centres, rho)
        if self._solver is not None:
            slot = np.array([self._slot])
            result = self._solver.solve(centres[None, :], rho, slot)
            if bool(result.ok[0]):
                self.x = result.X[0]
                self.status, self.message = "ok", ""
                return self.x
            self.fallback(centres, rho, result.why.get(0, "the batch solve failed"))
            return self.x
        return self._cvx_step(centres, rho)

    def _adapter_step(self, centres: np.ndarray, rho: float) -> np.ndarray:
        """The adapter's prox step; a step that misses its stopping rule fails (CVXPY cannot see
        the loss, so there is no fallback)."""
        assert self._external is not None
        try:
            out = self._external.step(centres, rho, self.x)
        except Exception as exc:
            self.status, self.message = "failed", f"object `{self.name}`: the adapter's prox step raised {type(exc).__name__}: {exc}"
            return self.x
        if out.ok:
            self.x = out.x
            self.status, self.message = "ok", ""
        else:
            self.status, self.message = "failed", out.message
        return self.x

    def fallback(self, centres: np.ndarray, rho: float, why: str) -> None:
        """Solve this step with CVXPY because the batch method could not (counted, reported)."""
        self.fallbacks += 1
        self.fallback_reason = why
        self._cvx_step(centres, rho)

    def _cvx_step(self, centres: np.ndarray, rho: float) -> np.ndarray:
        if self.r == 0 and self._solved_once and self.status == "ok":
            return self.x  # nothing links this object: its x never changes
        family = self._family if self._family is not None and self._family.dpp and not self.unbounded else None
        if family is not None:
            status, inaccurate, x_new = family.solve(self, centres, rho)
        else:
            if self._prox is None:
                self._prox = self._build_prox()
            if self.r:
                s = float(np.sqrt(rho))
                self._s.value = s
                self._sd.value = s * centres
            self._xv.value = self.x
            status, inaccurate = solve_problem(self._prox)
            x_new = None if self._xv.value is None else np.asarray(self._xv.value, dtype=np.float64).copy()
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
            self._detach("the objective is unbounded below along a direction no row sees: feasibility only")
            self._prox = self._build_prox(with_objective=False)
            return self._cvx_step(centres, rho)
        if kind == "ok" and x_new is not None:
            self.x = x_new
            self.status, self.message = "ok", ""
        else:
            self.status = kind if kind != "ok" else "failed"
            self.message = f"object `{self.name}`: local solve returned CVXPY status `{status}`"
        return self.x

    def objective_value(self, x: np.ndarray | None = None) -> float:
        """f_i(x) (at the current x by default)."""
        x = self.x if x is None else np.asarray(x, dtype=np.float64)
        if self._external is not None:
            return self._external.loss(x)
        form = self.analysis.form
        if form is not None:
            return float(form.value(x))
        self._xv.value = x
        val = self._f.value
        return float("nan") if val is None else float(val)

    def contribution(self, answer: CertificateAnswer | None = None) -> LocalReport:
        x = self.x
        a = self.M @ x + self.e
        objective = self.objective_value() if self.status == "ok" else float("nan")
        grad = 0.0
        q = self.analysis.objective
        if q is not None and self.status == "ok":
            with np.errstate(over="ignore", invalid="ignore"):
                grad = max(float(np.abs(q.P @ x).max(initial=0.0)), float(np.abs(q.q).max(initial=0.0)))
        return LocalReport(self.name, a, objective, self.status, self.message, grad, x.copy(), answer, self.unbounded)

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


def local_solver_summary(workers: Sequence[LocalWorker]) -> dict[str, Any]:
    """``solve --json``'s ``local_solvers``: objects per IR solver class and per method, the objects
    CVXPY solved throughout (with the reason), and per object the steps CVXPY solved because its
    method failed (objects without any are left out)."""
    from catopt_dsl.ir.analysis import SOLVER_CLASSES
    from catopt_dsl.solver.local import METHODS

    classes = dict.fromkeys(SOLVER_CLASSES, 0)
    methods = dict.fromkeys(METHODS, 0)
    cvxpy: dict[str, str] = {}
    fallbacks: dict[str, int] = {}
    for w in workers:
        classes[w.analysis.solver_class] += 1
        methods[w.method] += 1
        if w.method == "cvxpy":
            cvxpy[w.name] = w.method_reason
        if w.fallbacks:
            fallbacks[w.name] = w.fallbacks
    return {"classes": classes, "methods": methods, "cvxpy": cvxpy, "fallbacks": fallbacks}


def make_workers(
    items: Sequence[tuple[IRObject, np.ndarray, np.ndarray, ObjectAnalysis | None]],
    *,
    fast_path: bool = True,
    accuracy: Accuracy | None = None,
) -> list[LocalWorker]:
    """Workers for ``(object, M, e, analysis)`` items, members of one structure sharing a batch.

    Set-up is done per family, not per member: whether ``M'M`` is diagonal is checked once per
    distinct M (family members share their row template, ``layout.py``) and once per row shape
    for the others, and the methods of a family's members are chosen in one call
    (:func:`~catopt_dsl.solver.local.base.choose_methods`)."""
    items = [(obj, np.asarray(M, dtype=np.float64), np.asarray(e, dtype=np.float64), a) for obj, M, e, a in items]
    distinct: dict[int, np.ndarray] = {}
    for _, M, _, _ in items:
        distinct.setdefault(id(M), M)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for key, M in distinct.items():
        by_shape.setdefault(M.shape, []).append(key)
    separable_of: dict[int, bool] = {}
    for keys in by_shape.values():
        Ms = np.stack([distinct[key] for key in keys])
        MtM = np.matmul(np.swapaxes(Ms, 1, 2), Ms)
        n = MtM.shape[-1]
        off = np.count_nonzero(MtM * (1.0 - np.eye(n)), axis=(1, 2)) if n else np.zeros(len(keys), dtype=np.int64)
        for key, count in zip(keys, off):
            separable_of[key] = not count
    separable = [separable_of[id(M)] for _, M, _, _ in items]
    methods: list[tuple[str, str] | None] = [None] * len(items)
    if fast_path:
        families: dict[int, list[int]] = {}
        for i, (obj, M, _, a) in enumerate(items):
            if a is not None and obj.external is None and M.shape[1]:
                families.setdefault(id(a.group), []).append(i)
        for idx in families.values():
            a0 = items[idx[0]][3]
            assert a0 is not None
            chosen = choose_methods(
                a0.group,
                np.array([items[i][3].index for i in idx], dtype=np.int64),  # type: ignore[union-attr]
                np.array([separable[i] for i in idx], dtype=bool),
            )
            for i, method in zip(idx, chosen):
                methods[i] = method
    accuracy = accuracy or Accuracy()
    workers = [
        LocalWorker._member(obj, M, e, a, accuracy, m)
        if m is not None and m[0] not in ("cvxpy", "adapter") and a is not None and obj.external is None and M.shape[1]
        else LocalWorker(
            obj, M, e, fast_path=fast_path, analysis=a, accuracy=accuracy, _batched=True, _separable_rows=sep, _method=m
        )
        for (obj, M, e, a), sep, m in zip(items, separable, methods)
    ]
    _attach([w for w in workers if w.method not in ("cvxpy", "adapter")])
    _share_cvxpy([w for w in workers if w.method == "cvxpy"])
    return workers


def _share_cvxpy(workers: Sequence[LocalWorker]) -> None:
    """One :class:`CvxFamily` per (structure, row count) with more than one member, built on the
    first solve that needs it (many families never fall back)."""
    groups: dict[tuple[int, int], list[LocalWorker]] = {}
    for w in workers:
        if w.n:
            groups.setdefault((id(w.analysis.group), w.r), []).append(w)
    for members in groups.values():
        if len(members) < 2:
            continue
        family = CvxFamily(members[0].obj, members[0].n, members[0].r)
        for w in members:
            w._family = family


def _attach(workers: Sequence[LocalWorker]) -> None:
    """Give the workers their batch solvers: one per (analysis group, method, row count).

    Members that share one M (and one e) get a batch holding that one matrix
    (``BatchData.template``): a read-only broadcast instead of a stack of copies."""
    groups: dict[tuple[int, str, int], list[LocalWorker]] = {}
    for w in workers:
        groups.setdefault((id(w.analysis.group), w.method, w.r), []).append(w)
    for (_, method, _), members in groups.items():
        group = members[0].analysis.group
        k = len(members)
        M0, e0 = members[0].M, members[0].e
        shared = all(w.M is M0 for w in members)
        same_e = all(w.e is e0 for w in members)
        data = BatchData(
            names=tuple(w.name for w in members),
            group=group,
            members=np.array([w.analysis.index for w in members], dtype=np.int64),
            M=np.broadcast_to(M0, (k,) + M0.shape) if shared else np.stack([w.M for w in members]),
            e=np.broadcast_to(e0, (k,) + e0.shape) if same_e else np.stack([w.e for w in members]),
            template=M0 if shared else None,
        )
        solver = make_solver(method, data, members[0].accuracy)
        for slot, w in enumerate(members):
            if solver.accepted[slot]:
                w._solver, w._slot = solver, slot
                w._x = _NO_X
            else:
                w._x = np.zeros(w.n)
                w.method = "cvxpy"
                w.method_reason = solver.rejected.get(slot, "the batch method cannot take it")


class FastBatch:
    """Steps every batch of the given workers at once (workers without a batch are left alone).

    ``rows`` (optional, for the in-process loop): each worker's slice of the global row vector,
    its slice of the stacked x and its position among the objects, so :meth:`step_flat` and
    :meth:`report_flat` read the centres and write the rows, x and objectives of a whole batch
    with one indexing operation each (one slice each when the batch's members are consecutive
    objects, as a family's are).
    """

    def __init__(
        self, workers: Sequence[LocalWorker], rows: Mapping[str, tuple[slice, slice, int]] | None = None
    ) -> None:
        self.workers = [w for w in workers if w.fast]
        solvers: dict[int, tuple[BatchSolver, list[LocalWorker]]] = {}
        for w in self.workers:
            assert w._solver is not None
            solvers.setdefault(id(w._solver), (w._solver, []))[1].append(w)
        self.batches = []
        for solver, ws in solvers.values():
            slots = np.array([w._slot for w in ws], dtype=np.int64)
            # every member in slot order: the solver serves `everyone` without gathering copies
            if slots.size == solver.data.k and np.array_equal(slots, solver.everyone):
                slots = solver.everyone
            self.batches.append((solver, ws, slots))
        #: workers that left their batch for good, or fell back to CVXPY in the latest step
        self._irregular: dict[str, LocalWorker] = {}
        self._index: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        #: per batch, the (rows, x, positions) slices when its members are consecutive objects
        self._spans: list[tuple[slice, slice, slice] | None] = []
        if rows is not None:
            self._index = []
            for _, ws, _ in self.batches:
                spans = [rows[w.name] for w in ws]
                r_start = np.array([r.start for r, _, _ in spans], dtype=np.int64)
                x_start = np.array([x.start for _, x, _ in spans], dtype=np.int64)
                pos = np.array([p for _, _, p in spans], dtype=np.int64)
                r, n, k = ws[0].r, ws[0].n, len(ws)
                self._index.append((r_start[:, None] + np.arange(r)[None, :], x_start[:, None] + np.arange(n)[None, :], pos))
                step = np.arange(k)
                consecutive = (
                    np.array_equal(r_start, r_start[0] + r * step)
                    and np.array_equal(x_start, x_start[0] + n * step)
                    and np.array_equal(pos, pos[0] + step)
                )
                self._spans.append(
                    (
                        slice(int(r_start[0]), int(r_start[0]) + r * k),
                        slice(int(x_start[0]), int(x_start[0]) + n * k),
                        slice(int(pos[0]), int(pos[0]) + k),
                    )
                    if consecutive
                    else None
                )

    def irregular(self) -> list[LocalWorker]:
        """The workers whose latest step did not come from their batch (CVXPY solved it)."""
        return list(self._irregular.values())

    def _run(self, solver: BatchSolver, ws: list[LocalWorker], slots: np.ndarray, D: np.ndarray, rho: float) -> None:
        result: StepResult | None
        if not self._irregular:  # the usual step: every member in its batch
            result = solver.solve(D, rho, slots)
            if result.ok.all():
                if slots is solver.everyone:
                    solver.X[...] = result.X
                else:
                    solver.X[slots] = result.X
                return
            live = np.arange(len(ws))
            detached: list[int] = []
        else:
            detached = [i for i, w in enumerate(ws) if w.name in self._irregular and w._solver is not solver]
            for w in [w for w in ws if w.name in self._irregular and w._solver is solver]:
                del self._irregular[w.name]  # fell back last step, back in the batch now
            live = np.setdiff1d(np.arange(len(ws)), detached) if detached else np.arange(len(ws))
            result = solver.solve(D[live], rho, slots[live]) if live.size else None
        if result is not None and live.size:
            good = live[result.ok]
            solver.X[slots[good]] = result.X[result.ok]
            failed = live[~result.ok]
            why = {int(live[j]): text for j, text in result.why.items()}
        else:
            failed, why = np.zeros(0, dtype=np.int64), {}
        for i in detached:
            ws[i]._cvx_step(D[i], rho)
        for i in failed:
            w = ws[int(i)]
            w.fallback(D[i], rho, why.get(int(i), "the batch solve failed"))
            self._irregular[w.name] = w
        for i in detached:
            self._irregular[ws[i].name] = ws[i]

    def step_all(self, centres: Mapping[str, np.ndarray], rho: float) -> None:
        """x-update of every batched worker (results land in each worker's ``x``)."""
        for solver, ws, slots in self.batches:
            D = np.stack([np.asarray(centres[w.name], dtype=np.float64) for w in ws]).reshape(len(ws), -1)
            self._run(solver, ws, slots, D, rho)

    def step_flat(self, d: np.ndarray, rho: float) -> None:
        """x-update of every batched worker from the global centres vector ``d``."""
        assert self._index is not None, "FastBatch was built without rows"
        for (solver, ws, slots), (rows, _, _), span in zip(self.batches, self._index, self._spans):
            D = d[span[0]].reshape(len(ws), -1) if span is not None else d[rows]
            self._run(solver, ws, slots, D, rho)

    def report_flat(self, a: np.ndarray, x: np.ndarray, f: np.ndarray) -> float:
        """Write every batched worker's rows ``M x + e`` into ``a``, its x into ``x`` and its
        objective into ``f`` (global vectors); return the largest ``grad_scale``."""
        assert self._index is not None, "FastBatch was built without rows"
        grad = 0.0
        for (solver, _ws, slots), (rows, xs, pos), span in zip(self.batches, self._index, self._spans):
            whole = slots is solver.everyone
            X = solver.X if whole else solver.X[slots]
            A = solver.data.rows(X, None if whole else slots)
            values, g = solver.report(X, None if whole else slots)
            if span is not None:
                a[span[0]] = A.reshape(-1)
                x[span[1]] = X.reshape(-1)
                f[span[2]] = values
            else:
                a[rows] = A
                x[xs] = X
                f[pos] = values
            grad = max(grad, float(g.max(initial=0.0)))
        for w in self._irregular.values():  # their own report: status, CVXPY's x
            c = w.contribution()
            where = self._where(w)
            if where is not None:
                r_i, x_i, p_i = where
                a[r_i] = c.a
                x[x_i] = c.x if c.x is not None else 0.0
                f[p_i] = c.objective
                grad = max(grad, c.grad_scale)
        return grad

    def _where(self, w: LocalWorker) -> tuple[np.ndarray, np.ndarray, int] | None:
        assert self._index is not None
        for (_, ws, _), (rows, xs, pos) in zip(self.batches, self._index):
            for i, other in enumerate(ws):
                if other is w:
                    return rows[i], xs[i], int(pos[i])
        return None
