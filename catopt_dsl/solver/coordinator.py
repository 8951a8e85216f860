"""Coordinator: z/y-updates, scaled duals, residuals, stopping and rho adaptation.

ADMM (Boyd et al. 2011, scaled form with over-relaxation; consensus §7.1 and sharing §7.3 at
once) on the row system of ``layout.py``: ``M_i x_i + e_i == t_i`` for every object, where the
targets t are ``z_s[var]`` (consensus rows) or the per-term copies ``y_t`` (coupling rows).
One iteration, given the workers' ``a = M x + e`` (all rows):

    h   = alpha a + (1 - alpha) t                      (over-relaxation, alpha = 1.6 default)
    v   = h + u
    z_s = prox_{g_s}(mean of v over each var's links)  (shared.py; t[consensus rows] = z)
    y_t = v_t + (proj_K(s) - s) / T,  s = sum_t v_t    (Euclidean projection onto {sum y in K})
    u   = u + h - t

Residuals and stopping (infinity norms, OSQP style):

    r_prim = ||a - t||_inf
    r_dual = ||rho M'(t - t_prev)||_inf               (M' applied per object, then concatenated)
    stop when r_prim <= eps_abs + eps_rel * max(||a||_inf, ||t||_inf)
          and r_dual <= eps_abs + eps_rel * ||rho M'u||_inf
          and |y_c'(a - t)_c| <= 0.1 (eps_abs + eps_rel |objective|)   (c: coupling rows, y = rho u)

The third test bounds the objective's error at the reported point: consensus rows are glued to z
(``glue.py``, second-order error) but a coupling row keeps its residual, and the Lagrangian says
the objective there is off by about ``y'(a - t)``. Without it a sharing plan stopped at eps 1e-5
reported objectives 1e-4 off in relative terms.

Non-finite values and local verdicts end the solve (``local_solver_failed`` naming the object,
``infeasible``, ``unbounded``) before they reach z or u. Infeasibility and unboundedness of the
plan as a whole are proven by certificates built from the dual and iterate increments
(``certificate.py``); queries for them ride on the broadcast.

Rho adaptation (``rho.py``, where the rule is derived): at iterations 1, 2, 4, 8, ... below
``adaptive_rho_interval``, then every ``adaptive_rho_interval`` iterations, rho moves to the secant
curvature of the local objectives read per link, ``||delta yhat|| / ||delta a||`` with
``yhat = rho (a - t_prev + u_prev)``, when it is outside [kappa/2, 2 kappa]; where that secant says
nothing (first checkpoint, linear objectives, runs that diverge) residual balancing decides:
``rho * sqrt((r_prim / max(||a||, ||t||)) / (r_dual / scale))``, applied only when it moves rho by
more than 5x. Either way ``u *= rho / rho_new``. Unlike residual balancing, the curvature does
not depend on the number of members a consensus has.

Protocol: :meth:`Coordinator.update` takes one :class:`~catopt_dsl.solver.worker.LocalReport`
per object (``a`` and the local objective) and returns an :class:`Iterate`: the iteration,
rho, the centres ``d_i = t_i - u_i - e_i`` per object, residuals, the plan objective and whether
to stop. The coordinator knows the plan (M_i, e_i, couplings, shared blocks), never the local
objectives or constraints.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from catopt_dsl.ir.analysis import analyze_ir
from catopt_dsl.ir.model import IRVar
from catopt_dsl.solver.certificate import (
    CertificateAnswer,
    CertificateQuery,
    CertificateTracker,
)
from catopt_dsl.solver.layout import Layout
from catopt_dsl.solver.result import SolveOptions, SolverState
from catopt_dsl.solver.rho import (
    RHO_MAX,
    RHO_MIN,
    Secant,
    adapt_now,
    multiplier_estimate,
    next_rho,
    secant_curvature,
)
from catopt_dsl.solver.shared import ProxFailure, SharedProx
from catopt_dsl.solver.worker import LocalReport

__all__ = ["Coordinator", "Iterate", "Round", "project_box"]

_TINY = 1e-12


def _stacked_transpose(layout: Layout) -> sp.csr_matrix:
    """``M'`` of the block-diagonal ``M = diag(M_1, ..., M_N)`` (x-space by rows), built in one go:
    the nonzeros of each distinct ``M_i`` once (family members share their row template, see
    ``layout.py``), placed at every member's offsets by broadcasting."""
    by_matrix: dict[int, tuple[np.ndarray, list[int]]] = {}
    for i, o in enumerate(layout.objects):
        by_matrix.setdefault(id(o.M), (o.M, []))[1].append(i)
    rows, cols, vals = [], [], []
    for M, members in by_matrix.values():
        r, c = np.nonzero(M)
        x0 = np.array([layout.x_slices[i].start for i in members], dtype=np.int64)
        r0 = np.array([layout.objects[i].rows.start for i in members], dtype=np.int64)
        rows.append((c[None, :] + x0[:, None]).reshape(-1))
        cols.append((r[None, :] + r0[:, None]).reshape(-1))
        vals.append(np.tile(M[r, c], len(members)))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(layout.total_n, layout.total_rows),
    )


def _strided(index: np.ndarray) -> tuple[int, int] | None:
    """``(start, stride)`` when the ``(N, size)`` index array is ``start + stride * j + arange(size)``
    in row j (a family's links to one shared var, one per member at equal offsets), else None:
    its rows are then the first ``size`` columns of a reshape of one range (a view, no gather)."""
    N, size = index.shape
    if N == 0 or size == 0:
        return None
    start = int(index[0, 0])
    stride = int(index[1, 0] - start) if N > 1 else size
    if stride < size:
        return None
    expected = start + stride * np.arange(N)[:, None] + np.arange(size)[None, :]
    return (start, stride) if np.array_equal(index, expected) else None


def _identity_rows(layout: Layout) -> bool:
    """Whether the block-diagonal M is the identity: every object's M_i a square identity (each
    member linking all its vars, in order; family members share one template, checked once),
    so that object i's rows are its x positions and ``M' v`` is ``v``."""
    if layout.total_rows != layout.total_n:
        return False
    distinct = {id(o.M): o.M for o in layout.objects}
    return all(M.shape[0] == M.shape[1] and np.array_equal(M, np.eye(M.shape[0])) for M in distinct.values())


def project_box(s: np.ndarray, sense: str, rhs: np.ndarray) -> np.ndarray:
    """Euclidean projection of s onto K = {s <= rhs} | {s >= rhs} | {rhs}."""
    if sense == "<=":
        return np.minimum(s, rhs)
    if sense == ">=":
        return np.maximum(s, rhs)
    return np.array(rhs, dtype=np.float64, copy=True)


@dataclass(frozen=True, eq=False)
class Iterate:
    """Coordinator -> workers (``centres``, ``rho``) plus the iteration's bookkeeping."""

    iteration: int
    rho: float
    #: the centres of every object, concatenated in layout order (``centres`` splits them)
    d: np.ndarray
    layout: Layout
    r_prim: float = float("inf")
    r_dual: float = float("inf")
    eps_prim: float = 0.0
    eps_dual: float = 0.0
    objective: float = float("nan")
    converged: bool = False
    rho_changed: bool = False
    stats: dict[str, float] = field(default_factory=dict)
    #: a proven verdict other than ``optimal`` (``infeasible``, ``unbounded``,
    #: ``local_solver_failed``): the run ends with it
    status: str | None = None
    message: str = ""
    #: certificate queries for the objects to answer with their next contribution
    queries: dict[str, CertificateQuery] = field(default_factory=dict)

    @cached_property
    def centres(self) -> dict[str, np.ndarray]:
        """Object name -> the centres ``d_i`` of its next x-update."""
        return {o.obj.name: self.d[o.rows] for o in self.layout.objects}


@dataclass(frozen=True, eq=False)
class Round:
    """Every object's report of one iteration, as arrays in layout order (the in-process loop
    builds it directly; :meth:`Coordinator.update` builds it from per-object reports)."""

    a: np.ndarray  # (R,) the rows M x + e of every object
    f: np.ndarray  # (N,) each object's objective value
    grad_scale: float  # the largest of the objects' grad_scale
    x: np.ndarray | None  # (sum n_i,) every x stacked, or None when some are unknown
    #: (object, status, message) of every object whose status is not "ok", in layout order
    failures: tuple[tuple[str, str, str], ...] = ()
    answers: Mapping[str, CertificateAnswer | None] = field(default_factory=dict)
    #: the notes of objects unbounded below along a direction their rows ignore
    unbounded: tuple[str, ...] = ()


class Coordinator:
    """Holds z, the coupling copies y, the scaled duals u, rho; decides stopping."""

    def __init__(
        self,
        layout: Layout,
        options: SolveOptions,
        warm_start: SolverState | None = None,
        *,
        continues: Coordinator | None = None,
        resumed_at: int = 0,
    ) -> None:
        """``continues``: the coordinator this one replaces (a member set changed): the iteration
        count and last iterate carry over, so rho adaptation keeps its cadence and the stopping
        and progress bookkeeping run on; the numeric state comes from ``warm_start``.
        ``resumed_at``: ``warm_start`` is this run's own state at that iteration (a checkpoint), not a
        previous solve's: the iteration count and rho's cadence go on from there."""
        self.layout = layout
        self.opts = options
        self.rho = float(options.rho)
        R = layout.total_rows
        self.t = np.zeros(R)
        self.u = np.zeros(R)
        self._targets: list[tuple[str, IRVar, np.ndarray]] | None = None
        analysis = analyze_ir(layout.plan)
        self.proxes = {blk.name: SharedProx(blk, analysis.shared(blk.name)) for blk in layout.shared}
        self.z = {blk.name: np.zeros(blk.n) for blk in layout.shared}
        self.iteration: int = resumed_at if continues is None else continues.iteration
        self.last: Iterate | None = None if continues is None else continues.last
        self.certificates = CertificateTracker(
            layout, self.proxes, options.infeasibility_check_interval, options.eps_abs
        )
        self._x: np.ndarray | None = None
        # When every object's rows are its x (consensus on all its vars, in order), M' v is v: the
        # same values as the sparse product, without building it or paying for it per iteration.
        self._MT_identity = bool(layout.objects) and _identity_rows(layout)
        #: every object's M_i on the block diagonal: M' of a row vector in one product
        self._MTt = _stacked_transpose(layout) if layout.objects and not self._MT_identity else None
        #: per (shared block, var) with a strided index: (start, stride) (``_strided``)
        self._strides = {key: _strided(index) for key, index in layout.consensus_index.items()}
        self._coupling_rows = (
            np.concatenate([c.term_index.reshape(-1) for c in layout.couplings])
            if layout.couplings
            else np.zeros(0, dtype=np.int64)
        )
        #: the previous iteration's rows and multiplier estimate (the curvature secant, ``rho.py``)
        self._secant: Secant | None = None
        #: warm-started (a state with values; a replacement inherits it): rho comes from the
        #: previous solve, not a guess the early checkpoints correct
        if continues is not None:
            self._warm_started: bool = continues._warm_started
        elif resumed_at:
            self._warm_started = False
        else:
            self._warm_started = warm_start is not None and bool(warm_start.duals or warm_start.z or warm_start.x)
        if warm_start is not None:
            self._warm(warm_start)
        else:
            self._sync_consensus_targets()

    # -- state ---------------------------------------------------------------------------------
    def _warm(self, state: SolverState) -> None:
        self.rho = float(np.clip(state.rho, RHO_MIN, RHO_MAX))
        for blk in self.layout.shared:
            z = state.z.get(blk.name)
            if z is not None and np.asarray(z).shape == (blk.n,):
                self.z[blk.name] = np.asarray(z, dtype=np.float64).copy()
        self._sync_consensus_targets()  # new members start from z
        for block in self.layout.blocks:
            size = block.rows.stop - block.rows.start
            u = state.duals.get(block.key)
            if u is not None and np.asarray(u).shape == (size,):
                self.u[block.rows] = u
            y = state.targets.get(block.key)
            if block.kind == "coupling" and y is not None and np.asarray(y).shape == (size,):
                self.t[block.rows] = y
        # The secant only where every row block has one of the right size (else: none yet).
        pairs = [state.secant.get(block.key) for block in self.layout.blocks]
        sizes = [block.rows.stop - block.rows.start for block in self.layout.blocks]
        if self.layout.blocks and all(
            p is not None and np.shape(p[0]) == (n,) and np.shape(p[1]) == (n,) for p, n in zip(pairs, sizes)
        ):
            a, yhat = np.zeros(self.layout.total_rows), np.zeros(self.layout.total_rows)
            for block, p in zip(self.layout.blocks, pairs):
                assert p is not None
                a[block.rows], yhat[block.rows] = p
            self._secant = Secant(a, yhat)

    def _sync_consensus_targets(self) -> None:
        if self._targets is None:
            plan = self.layout.plan
            self._targets = [
                (shared, plan.shared_block(shared).var(var_name), index)
                for (shared, var_name), index in self.layout.consensus_index.items()
            ]
        for shared, var, index in self._targets:
            value = self.z[shared][var.offset : var.offset + var.size][None, :]
            found = self._strides.get((shared, var.name))
            if found is None:
                self.t[index] = value
            else:
                self._links_of(self.t, (shared, var.name), index)[...] = value

    def _links_of(self, vec: np.ndarray, key: tuple[str, str], index: np.ndarray) -> np.ndarray:
        """``vec[index]`` for the links to one shared var: a view when they are strided."""
        found = self._strides.get(key)
        if found is None:
            return vec[index]
        start, stride = found
        N, size = index.shape
        # A view whether or not a whole stride follows the last link (the last member's rows may
        # end with it): the sync writes through it, so a copy would lose the targets. Its extent,
        # start + (N - 1) stride + size, is the index's own last row + 1: within vec.
        step = vec.strides[0]
        return np.lib.stride_tricks.as_strided(vec[start:], shape=(N, size), strides=(stride * step, step))

    def state(self, x: Mapping[str, np.ndarray], copy: bool = True) -> SolverState:
        """The state to warm-start or resume from; ``copy=False``: the caller hands over ``x``'s
        arrays (it keeps no other reference to them), which are then stored as they are."""
        # one copy of each row vector, and every block's entry a view of it (not a copy per block)
        u, t = self.u.copy(), self.t.copy()
        sec = None if self._secant is None else (self._secant.a.copy(), self._secant.yhat.copy())
        duals: dict[str, np.ndarray] = {}
        targets: dict[str, np.ndarray] = {}
        secant: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        objects = self.layout.objects
        for run in self.layout.member_runs:
            k = run.stop - run.start
            if k > 1 and run.r > 0 and len(run.links) == 1:
                # a family with one link each: member j's entries are row j of the run's rows
                head, tail = run.links[0][0], run.links[0][1]
                keys = [f"{head}{o.obj.name}{tail}" for o in objects[run.start : run.stop]]
                span = slice(run.row_start, run.row_start + k * run.r)
                duals.update(zip(keys, u[span].reshape(k, run.r)))
                if sec is not None:
                    secant.update(zip(keys, zip(sec[0][span].reshape(k, run.r), sec[1][span].reshape(k, run.r))))
                continue
            for o in objects[run.start : run.stop]:
                for b in o.blocks:
                    duals[b.key] = u[b.rows]
                    if b.kind == "coupling":
                        targets[b.key] = t[b.rows]
                    if sec is not None:
                        secant[b.key] = (sec[0][b.rows], sec[1][b.rows])
        return SolverState(
            rho=self.rho,
            x={k: np.asarray(v, dtype=np.float64).copy() for k, v in x.items()} if copy else dict(x),
            z={k: v.copy() for k, v in self.z.items()},
            duals=duals,
            targets=targets,
            secant=secant,
        )

    def prices(self) -> dict[str, dict[str, np.ndarray]]:
        """The dual prices of the plan's links: the unscaled duals the last x-update was stationary
        for (``rho (u + a - t)`` before the update; see ``update``).

        ``couplings``: coupling identity -> the multiplier lambda of ``sum(terms) - rhs`` (in the
        coupling's shape): >= 0 for ``<=``, <= 0 for ``>=``; the optimal objective changes by about
        ``-lambda`` per unit of ``rhs``. Every term of a coupling carries the same lambda at the
        optimum (the sharing projection makes them equal), so their mean is reported.
        ``consensus``: ``object.var`` -> the multiplier of ``object.var - shared_var`` (the var's
        shape): what the object would pay per unit of moving its copy away from the shared value.
        """
        y = self._secant.yhat if self._secant is not None else self.rho * self.u
        couplings = {}
        for c, spec in zip(self.layout.couplings, self.layout.plan.couplings):
            if c.term_index.size:
                couplings[c.name] = y[c.term_index].mean(axis=0).reshape(spec.shape)
        consensus: dict[str, np.ndarray] = {}
        objects = self.layout.objects
        for run in self.layout.member_runs:
            k = run.stop - run.start
            if k > 1 and run.r > 0 and len(run.links) == 1 and len(run.vars) == 1 and len(run.vars[0].shape) == 1:
                # a family linking its one vector var: member j's price is row j of the run's rows
                var = run.links[0][8]
                rows = y[run.row_start : run.row_start + k * run.r].reshape(k, run.r)
                consensus.update(zip([f"{o.obj.name}.{var}" for o in objects[run.start : run.stop]], rows))
                continue
            for o in objects[run.start : run.stop]:
                for block in o.blocks:
                    if block.kind == "consensus" and block.var is not None:
                        consensus[f"{o.obj.name}.{block.var}"] = y[block.rows].reshape(o.obj.var(block.var).shape)
        return {"couplings": couplings, "consensus": consensus}

    def centres(self) -> dict[str, np.ndarray]:
        d = self.centres_flat()
        return {o.obj.name: d[o.rows] for o in self.layout.objects}

    def centres_flat(self) -> np.ndarray:
        """Every object's centres ``t - u - e``, concatenated in layout order."""
        return np.asarray(self.t - self.u - self.layout.e, dtype=np.float64)

    def centres_of(self, name: str) -> np.ndarray:
        """The centres ``d_i = t_i - u_i - e_i`` object ``name`` solves its next x-update for."""
        o = self.layout.object_rows(name)
        return np.asarray(self.t[o.rows] - self.u[o.rows] - o.e, dtype=np.float64)

    def first_iterate(self) -> Iterate:
        return Iterate(iteration=0, rho=self.rho, d=self.centres_flat(), layout=self.layout)

    def g_total(self) -> float:
        return float(sum(self.proxes[name].g_value(z) for name, z in self.z.items()))

    def _MT(self, vec: np.ndarray) -> np.ndarray:
        """Concatenate M_i' vec_i over objects (the x-space image of a row vector; ``vec`` itself
        when M' is the identity: read it, do not write to it)."""
        if self._MT_identity:
            return vec
        if self._MTt is None:
            return np.zeros(0)
        return np.asarray(self._MTt @ vec)

    # -- one iteration ------------------------------------------------------------------------------
    def _refuse(self, rnd: Round) -> tuple[str, str] | None:
        """A local verdict, or a non-finite value, ends the solve: never let it into z or u.

        An infeasible object makes the plan infeasible whatever else happens, so that verdict
        comes first; a local unboundedness is only a verdict for a feasible plan (see
        ``LocalWorker.step``).
        """
        for kind in ("infeasible", "failed", "unbounded"):
            for name, st, message in rnd.failures:
                if st == kind or (kind == "failed" and st not in ("ok", "infeasible", "unbounded")):
                    status = {"infeasible": "infeasible", "unbounded": "unbounded"}.get(st, "local_solver_failed")
                    return status, message or f"object `{name}`: local solve reported `{st}`"
        # a finite sum has finite terms (a NaN or an infinity carries into it): the usual round
        # is cleared by three sums; an overflowing sum of finite values falls to the exact test
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(np.sum(rnd.a)) + float(np.sum(rnd.f)) + (0.0 if rnd.x is None else float(np.sum(rnd.x)))
        if np.isfinite(total):
            return None
        x_ok = rnd.x is None or bool(np.all(np.isfinite(rnd.x)))
        if x_ok and bool(np.all(np.isfinite(rnd.a))) and bool(np.all(np.isfinite(rnd.f))):
            return None
        lay = self.layout
        for i, o in enumerate(lay.objects):
            bad = [
                what
                for what, value in (
                    ("a non-finite value in x", None if rnd.x is None else rnd.x[lay.x_slices[i]]),
                    ("a non-finite value in its rows M x + e", rnd.a[o.rows]),
                    ("a non-finite objective value", rnd.f[i]),
                )
                if value is not None and not np.all(np.isfinite(value))
            ]
            if bad:
                return "local_solver_failed", (
                    f"object `{o.obj.name}`: the local solver returned {bad[0]} (NaN or Inf); the solve "
                    "stopped before it reached the shared variables (check the object's data for overflow)"
                )
        return None

    def round_of(self, contributions: Mapping[str, LocalReport]) -> Round:
        """The :class:`Round` of per-object reports (one per object of the layout)."""
        lay = self.layout
        a = np.zeros(lay.total_rows)
        f = np.zeros(len(lay.objects))
        x = np.zeros(lay.total_n)
        complete = True
        grad = 0.0
        failures = []
        unbounded = []
        for i, o in enumerate(lay.objects):
            c = contributions[o.obj.name]
            a[o.rows] = c.a
            f[i] = c.objective
            grad = max(grad, c.grad_scale)
            if c.x is None:
                complete = False
            else:
                x[lay.x_slices[i]] = np.asarray(c.x, dtype=np.float64).reshape(-1)
            if c.status != "ok":
                failures.append((c.object, c.status, c.message))
            if c.unbounded:
                unbounded.append(c.unbounded)
        if not complete:
            # the provided parts still have to be finite: check them before dropping x
            for o in lay.objects:
                c = contributions[o.obj.name]
                if c.x is not None and not np.all(np.isfinite(c.x)):
                    complete = True
                    break
        answers = {n: c.answer for n, c in contributions.items()}
        return Round(a, f, grad, x if complete else None, tuple(failures), answers, tuple(unbounded))

    def _stop(self, status: str, message: str) -> Iterate:
        last = self.last
        self.last = Iterate(
            iteration=self.iteration,
            rho=self.rho,
            d=self.centres_flat(),
            layout=self.layout,
            r_prim=float("inf") if last is None else last.r_prim,
            r_dual=float("inf") if last is None else last.r_dual,
            objective=float("nan") if last is None else last.objective,
            status=status,
            message=message,
        )
        return self.last

    def update(self, contributions: Mapping[str, LocalReport], fresh: Collection[str] | None = None) -> Iterate:
        """Consume every object's contribution, run the z/y/u updates, return the broadcast.

        The broadcast's ``status`` is set when the iteration proved a verdict: a local failure
        or non-finite value, or a verified infeasibility or unboundedness certificate
        (``certificate.py``); ``converged`` when the stopping test passed.

        ``fresh`` (asynchronous ADMM, Zhang & Kwok 2014): the objects whose contribution is new
        this iteration; only their duals are updated (a reused, stale contribution enters the
        z-update but must not be integrated into u again). None: every object is fresh.
        """
        return self.update_round(self.round_of(contributions), fresh)

    def update_round(self, rnd: Round, fresh: Collection[str] | None = None) -> Iterate:
        """:meth:`update` from the arrays of a :class:`Round`."""
        lay, opts = self.layout, self.opts
        self.iteration += 1
        refused = self._refuse(rnd)
        if refused is not None:
            return self._stop(*refused)
        a = np.array(rnd.a, dtype=np.float64)  # the caller may reuse its buffer
        f_sum = float(np.sum(rnd.f))
        grad_scale = rnd.grad_scale
        x_now = None if rnd.x is None else rnd.x.copy()
        rho = self.rho
        t_old = self.t.copy()
        y_old = rho * self.u
        # The duals the x-update was exactly stationary for: each object solved
        # min f_i + rho/2 ||a_i - t_i + u_i||^2, so -grad f_i = M_i' rho (a_i - t_i + u_i). With
        # over-relaxation the updated y differs from them by rho (alpha - 1)(a - t), which is not
        # small when rho is large; prices are read from these, and rho's secant curvature too.
        secant = Secant(a, multiplier_estimate(rho, a, t_old, self.u))
        previous, self._secant = self._secant, secant
        h = opts.alpha * a + (1.0 - opts.alpha) * t_old
        v = h + self.u
        # consensus z-update
        try:
            for blk in lay.shared:
                means: dict[str, np.ndarray] = {}
                counts: dict[str, int] = {}
                for var in blk.vars:
                    index = lay.consensus_index.get((blk.name, var.name))
                    if index is None:
                        continue
                    means[var.name] = self._links_of(v, (blk.name, var.name), index).mean(axis=0)
                    counts[var.name] = int(index.shape[0])
                self.z[blk.name] = self.proxes[blk.name].prox(means, counts, rho, self.z[blk.name])
        except ProxFailure as exc:
            return self._stop(exc.status, exc.message)
        self._sync_consensus_targets()
        # sharing y-update
        for cp_ in lay.couplings:
            T = cp_.term_index.shape[0]
            if T == 0:
                continue
            V = v[cp_.term_index]
            s = V.sum(axis=0)
            self.t[cp_.term_index] = V + (project_box(s, cp_.sense, cp_.rhs) - s)[None, :] / T
        if fresh is None:
            self.u = self.u + h - self.t
        else:
            step = h - self.t
            for o in lay.objects:
                if o.obj.name in fresh:
                    self.u[o.rows] += step[o.rows]
        # residuals
        r_prim_vec = a - self.t
        r_prim = float(np.abs(r_prim_vec).max(initial=0.0))
        if self._MT_identity:
            # rho * max|.| is max|rho * .| exactly (rho > 0, rounding is monotone): one array op less each
            r_dual = rho * float(np.abs(self.t - t_old).max(initial=0.0))
        else:
            r_dual = float(np.abs(rho * self._MT(self.t - t_old)).max(initial=0.0))
        prim_scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(self.t).max(initial=0.0)))
        if self._MT_identity:
            dual_scale = rho * float(np.abs(self.u).max(initial=0.0))
        else:
            dual_scale = float(np.abs(rho * self._MT(self.u)).max(initial=0.0))
        eps_prim = opts.eps_abs + opts.eps_rel * prim_scale
        eps_dual = opts.eps_abs + opts.eps_rel * dual_scale
        dy = rho * self.u - y_old  # unscaled dual increment: the primal-infeasibility candidate
        objective = f_sum + self.g_total()
        # The reported point is glued along consensus links (second-order objective error), but a
        # coupling row keeps its residual a - t, and the objective there is off by about
        # y'(a - t) (first order: ~1e-4 relative at eps 1e-5 on sharing plans). Stop only once
        # that estimate is within the relative tolerance too.
        cr = self._coupling_rows
        gap_est = abs(float(np.sum(rho * self.u[cr] * r_prim_vec[cr]))) if cr.size else 0.0
        eps_gap = 0.1 * (opts.eps_abs + opts.eps_rel * abs(objective)) if np.isfinite(objective) else 0.0
        converged = r_prim <= eps_prim and r_dual <= eps_dual and gap_est <= eps_gap
        unbounded = list(rnd.unbounded)
        rho_changed = False
        if opts.adaptive_rho and not converged and adapt_now(self.iteration, opts.adaptive_rho_interval, self._warm_started):
            early = self.iteration < opts.adaptive_rho_interval
            kappa = None if previous is None else secant_curvature(previous, secant)
            rho_new = next_rho(rho, kappa, r_prim / max(prim_scale, _TINY), r_dual, dual_scale, grad_scale, early)
            if rho_new != rho:
                self.u *= rho / rho_new
                self.rho = rho_new
                rho_changed = True
        status: str | None = None
        message = ""
        queries: dict[str, CertificateQuery] = {}
        if converged and unbounded:
            # Converged with the unbounded objects' objectives set aside: the plan is feasible,
            # and each of those objects falls without end along a direction its links ignore.
            status, converged = "unbounded", False
            message = (
                "the plan is unbounded below: "
                + "; ".join(sorted(unbounded))
                + "; the rest of the plan is feasible (ADMM converged with those objectives set aside)"
            )
        if not converged and status is None:
            # delta y / rho converges to the gap between the constraint sets (zero iff feasible):
            # unboundedness is claimed only when the plan is feasible to the tolerance `optimal` uses
            gap = float(np.abs(dy).max(initial=0.0)) / rho
            verdict = self.certificates.step(
                self.iteration,
                rnd.answers,
                dy,
                self._x,
                x_now,
                rho_changed,
                feasible=gap <= opts.eps_abs,
            )
            if verdict is not None:
                status, message = verdict
            queries = self.certificates.queries
        self._x = x_now
        self.last = Iterate(
            iteration=self.iteration,
            rho=self.rho,
            d=self.centres_flat(),
            layout=self.layout,
            r_prim=r_prim,
            r_dual=r_dual,
            eps_prim=eps_prim,
            eps_dual=eps_dual,
            objective=objective,
            converged=converged,
            rho_changed=rho_changed,
            status=status,
            message=message,
            queries=queries,
        )
        return self.last

    def no_convergence_message(self, max_iter: int) -> str:
        """The honest ``max_iterations`` message: the residuals against their tolerances, and a hint."""
        last = self.last
        if last is None:
            return f"no convergence within {max_iter} iterations"
        hint = self.certificates.suspicion
        if not hint:
            if last.r_prim > 100 * last.eps_prim:
                hint = "the primal residual is far from its tolerance: the constraints may be infeasible or badly scaled"
            else:
                hint = "raise --max-iter, loosen --eps-abs/--eps-rel, or rescale the data"
        else:
            hint += "; no certificate could be verified"
        return (
            f"no convergence within {max_iter} iterations: primal residual {last.r_prim:.3g} "
            f"(tolerance {last.eps_prim:.3g}), dual residual {last.r_dual:.3g} (tolerance {last.eps_dual:.3g}); "
            f"hint: {hint}"
        )
