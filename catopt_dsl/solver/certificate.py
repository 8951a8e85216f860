"""Infeasibility and unboundedness certificates for the ADMM of ``coordinator.py``.

ADMM on an infeasible or unbounded problem does not converge, but its iterates say why
(Banjac, Goulart, Stellato, Boyd, "Infeasibility detection in the alternating direction method of
multipliers for convex optimization", JOTA 2019, the rule OSQP implements): the successive
differences of the unscaled duals ``delta y`` converge to a certificate of *primal*
infeasibility, and the successive differences of the iterates ``delta x`` to a certificate of
*dual* infeasibility (a direction of unbounded descent). Here a candidate is only the start:
it is turned into an exact certificate and checked before any status is claimed.

The problem (``layout.py``): ``min sum_i f_i(x_i) + G(t)`` s.t. ``M_i x_i + e_i = t_i``, where f_i
includes the indicator of object i's constraint set C_i and G holds the shared terms g_s(z_s), the
shared constraints, and the coupling sets ``{y : sum_t y_t in K_c}``.

**Primal infeasibility** (Farkas). A row vector lambda proves that no x, t satisfy the rows when

    sum_i min_{x in C_i, dom f_i} lambda_i'(M_i x + e_i)  >  sup_{t in dom G} lambda't.

The right side is finite only for lambdas of a certain structure, which the candidate
``lambda = delta y / ||delta y||`` is projected onto (any lambda of that structure gives a valid
proof, so projecting costs nothing in soundness):

* coupling c: one lambda_c on every term (their mean) in the sense's dual cone (``<=``: >= 0,
  ``>=``: <= 0, ``==``: free); its share of the sup is ``lambda_c' rhs_c``;
* consensus: for a shared var with links l, ``sup_z (sum_l lambda_l)'z`` over the block's
  constraints and g's domain; for a block with neither, the lambdas of each var are shifted to sum
  to zero (share 0), otherwise the sup is computed (an LP/conic solve, ``SharedProx.support``).

The coordinator sends each object its rows of lambda; the object answers with its support value
(``LocalWorker.support``: an exact conic solve over C_i and f_i's domain). The status is
``infeasible`` only when the inequality holds with a relative margin of ``1e-6``.

**Dual infeasibility** (unboundedness). A direction d (all objects' x) proves the plan unbounded
below, given a feasible point, when it is a recession direction of everything and the objective
decreases along it:

* each object: its objective is quadratic (``1/2 x'Px + q'x``) and its constraints affine
  (``A_eq x = b``, ``A_in x <= b``): d_i is projected onto the null space of ``[P; A_eq]`` (an exact
  SVD null space, so curvature, however small, is never mistaken for none), must not move in
  the projection (relative ``1e-6``), must satisfy ``A_in d_i <= 0`` (relative ``1e-6``); its slope
  is ``q'd_i``. Any other object cannot certify (the status stays ``max_iterations`` with a hint);
* the rows: every consensus link of a shared var moves by the same d_z (relative ``1e-6``), d_z is
  a recession direction of the shared block with slope ``g_s'(d_z)``, and each coupling's summed
  direction lies in the recession cone of its set (``<=``: <= 0, ``>=``: >= 0, ``==``: 0);
* the total slope is negative, and the plan is feasible to tolerance: the dual increment in
  primal units, ``||delta y||_inf / rho``, which converges to the gap between the constraint sets
  (zero exactly when they meet; Banjac et al., section 5), is within ``eps_abs``, the standard
  ``optimal`` uses. (The primal residual itself proves nothing here: on an unbounded plan it
  need not vanish while the iterates run off.)

Queries travel with the broadcast and answers with the next contribution, in every runtime (the
in-process loop, the delta-sync protocol, Ray), so one plan gets one status at one iteration
whatever runs it. A candidate that fails verification is retried later with a doubling backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from catopt_dsl.solver.layout import Layout

if TYPE_CHECKING:  # the shared prox imports this module's recession rule
    from catopt_dsl.solver.shared import SharedProx

__all__ = [
    "CertificateAnswer",
    "CertificateQuery",
    "CertificateTracker",
    "MARGIN",
    "RECESSION_TOL",
    "recession_slope",
]

#: relative margin by which a Farkas inequality must hold before ``infeasible`` is claimed
MARGIN = 1e-6
#: relative change of successive differences under which a candidate is considered settled
SETTLED = 1e-3
#: relative tolerance of recession checks (projection distance, inequality rows, consensus rows)
RECESSION_TOL = 1e-6


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
    when d^ is a recession direction (the module docstring gives the rule); None otherwise."""
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


@dataclass(frozen=True, eq=False)
class CertificateQuery:
    """Coordinator -> one object: verify a candidate certificate (either part may be absent)."""

    qid: int
    lam: np.ndarray | None = None  # (r_i,): the object's rows of lambda (primal infeasibility)
    direction: np.ndarray | None = None  # (n_i,): the object's part of d (unboundedness)
    want_lineality: bool = False  # send the lineality space of the feasible set (a hint for lambda)


@dataclass(frozen=True)
class CertificateAnswer:
    """One object's answer. ``support``: ``min lambda_i'(M_i x + e_i)`` over its feasible set
    (``-inf`` when unbounded, NaN when the solve failed); ``slope``: the recession slope of its
    objective along its (projected) direction, or None when it cannot certify one; ``lineality``:
    when asked, a basis of the lineality space of its feasible set (None: unknown)."""

    qid: int
    support: float | None = None
    slope: float | None = None
    #: (n_i, k): a basis of the directions along which the object's feasible set extends both ways
    lineality: np.ndarray | None = None


@dataclass
class _Pending:
    qid: int
    kind: str  # "lineality" (first step of a primal check) | "primal" | "dual"
    asked: tuple[str, ...]
    lam: np.ndarray | None = None  # lineality: the raw candidate, projected once the bases arrive
    bound: float = 0.0  # primal: sup over dom G of lambda't
    shared_slope: float = 0.0  # dual: the shared terms' slope along d_z
    describe: str = ""


@dataclass
class _Difference:
    """Successive differences of one quantity, to tell when they settle on a direction."""

    last: np.ndarray | None = None
    prev: np.ndarray | None = None

    def push(self, diff: np.ndarray) -> None:
        self.prev, self.last = self.last, diff

    def reset(self) -> None:
        self.last = self.prev = None

    def settled(self, floor: float) -> np.ndarray | None:
        """The latest difference scaled to unit max-norm when it is nonzero and settled."""
        if self.last is None or self.prev is None or self.last.shape != self.prev.shape:
            return None
        size = float(np.abs(self.last).max(initial=0.0))
        if not np.isfinite(size) or size <= floor:
            return None
        if float(np.abs(self.last - self.prev).max(initial=0.0)) > SETTLED * size:
            return None
        return self.last / size


@dataclass
class CertificateTracker:
    """Watches the iterates, issues certificate queries and judges the answers (one per solve).

    The coordinator calls :meth:`step` once per iteration with the objects' answers to the
    previous queries; it returns a verdict or None and leaves the next queries in :attr:`queries`.
    A primal check takes two rounds: the objects first send the lineality spaces of their feasible
    sets (directions along which a support value would be ``-inf`` unless lambda is orthogonal to
    them), the candidate is projected to respect them, then the objects send support values.
    """

    layout: Layout
    proxes: Mapping[str, SharedProx]
    interval: int
    eps_abs: float
    dy: _Difference = field(default_factory=_Difference)
    dx: _Difference = field(default_factory=_Difference)
    queries: dict[str, CertificateQuery] = field(default_factory=dict)
    pending: _Pending | None = None
    next_try: int = 0
    failures: int = 0
    #: the latest unproven suspicion, for the max_iterations hint
    suspicion: str = ""

    def step(
        self,
        iteration: int,
        answers: Mapping[str, CertificateAnswer | None],
        dy: np.ndarray,
        x_prev: np.ndarray | None,
        x_now: np.ndarray | None,
        rho_changed: bool,
        feasible: bool,
    ) -> tuple[str, str] | None:
        """Judge pending answers, record this iteration's differences, maybe issue queries.

        ``feasible``: the plan is feasible to tolerance (see the module docstring), required
        before ``unbounded`` is claimed. Returns ``(status, message)`` for a proven verdict.
        """
        self.queries = {}
        verdict = self._judge(iteration, answers, feasible)
        if verdict is not None:
            return verdict
        # rho changes rescale u: the dual increment straddling one is not a direction
        if rho_changed:
            self.dy.reset()
        else:
            self.dy.push(dy)
        # x_prev/x_now: every object's x stacked in layout order (None: not all of them known)
        if self.layout.objects and x_prev is not None and x_now is not None and x_prev.shape == x_now.shape:
            self.dx.push(x_now - x_prev)
        else:
            self.dx.reset()
        if self.interval <= 0 or self.pending is not None or iteration < max(self.next_try, self.interval):
            return None
        if iteration % self.interval:
            return None
        lam = self.dy.settled(self.eps_abs)
        if lam is not None:
            self._lineality_query(iteration, lam)
            return None
        d = self.dx.settled(self.eps_abs)
        if d is not None:
            self._dual_query(iteration, d)
        return None

    def _backoff(self, iteration: int) -> None:
        self.failures += 1
        self.next_try = iteration + self.interval * (2 ** min(self.failures, 10))

    # -- primal infeasibility ---------------------------------------------------------------------
    def _lineality_query(self, iteration: int, lam: np.ndarray) -> None:
        asked = tuple(o.obj.name for o in self.layout.objects if o.M.shape[0])
        for name in asked:
            self.queries[name] = CertificateQuery(iteration, want_lineality=True)
        self.pending = _Pending(iteration, "lineality", asked, lam=np.array(lam, dtype=np.float64))

    def _project(self, raw: np.ndarray, bases: Mapping[str, np.ndarray | None]) -> np.ndarray:
        """The structured lambda nearest (in the parameters) to ``raw``: one lambda per coupling
        in its dual cone, zero-sum consensus lambdas on unconstrained blocks, and each object's
        ``M_i' lambda_i`` orthogonal to the lineality space of its feasible set."""
        lay = self.layout
        R = lay.total_rows
        # parameters: one vector per coupling (its terms share it), one per consensus row
        cols: list[np.ndarray] = []  # for each parameter, the global rows it sets
        theta0: list[float] = []
        signs: list[int] = []  # +1: >= 0, -1: <= 0, 0: free
        for c in lay.couplings:
            if not c.term_index.size:
                continue
            mean = raw[c.term_index].mean(axis=0)
            cone = 1 if c.sense == "<=" else -1 if c.sense == ">=" else 0
            for j in range(c.term_index.shape[1]):
                cols.append(c.term_index[:, j])
                theta0.append(float(mean[j]))
                signs.append(cone)
        zero_sum: list[list[int]] = []
        for blk in lay.shared:
            for var in blk.vars:
                index = lay.consensus_index.get((blk.name, var.name))
                if index is None:
                    continue
                first = len(cols)
                for row in index.reshape(-1):
                    cols.append(np.array([row]))
                    theta0.append(float(raw[row]))
                    signs.append(0)
                if self.proxes[blk.name].full_domain:
                    ids = np.arange(first, len(cols)).reshape(index.shape)
                    zero_sum += [list(ids[:, j]) for j in range(index.shape[1])]
        P = len(cols)
        phi_rows = np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, dtype=np.int64)
        phi_cols = np.repeat(np.arange(P), [len(c) for c in cols]) if cols else np.zeros(0, dtype=np.int64)
        Phi = sp.csr_matrix((np.ones(phi_rows.size), (phi_rows, phi_cols)), shape=(R, P))
        blocks: list[sp.spmatrix] = []
        if zero_sum:
            z_rows = np.repeat(np.arange(len(zero_sum)), [len(ids) for ids in zero_sum])
            z_cols = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in zero_sum])
            blocks.append(sp.csr_matrix((np.ones(z_cols.size), (z_rows, z_cols)), shape=(len(zero_sum), P)))
        for o in lay.objects:
            basis = bases.get(o.obj.name)
            if basis is None or basis.size == 0 or not o.M.shape[0]:
                continue
            blocks.append(sp.csr_matrix(basis.T @ o.M.T) @ Phi[o.rows.start : o.rows.stop])
        theta = np.asarray(theta0, dtype=np.float64)
        sign = np.asarray(signs)
        C = sp.vstack(blocks).tocsr() if blocks else None

        def onto_null(v: np.ndarray) -> np.ndarray:
            if C is None or C.shape[0] == 0:
                return v
            if P <= 2000:
                w = np.linalg.lstsq(C.T.toarray(), v, rcond=None)[0]
            else:
                w = spla.lsqr(C.T, v, atol=1e-15, btol=1e-15, iter_lim=20 * P)[0]
            return v - C.T @ w

        for _ in range(20):  # alternate: the subspace, then the couplings' dual cones
            theta = onto_null(theta)
            clipped = np.where(sign > 0, np.maximum(theta, 0.0), np.where(sign < 0, np.minimum(theta, 0.0), theta))
            if float(np.abs(clipped - theta).max(initial=0.0)) <= 1e-13 * max(1.0, float(np.abs(theta).max(initial=0.0))):
                theta = clipped
                break
            theta = clipped
        return np.asarray(Phi @ theta, dtype=np.float64)

    def _primal_query(self, iteration: int, lam: np.ndarray) -> bool:
        lay = self.layout
        size = float(np.abs(lam).max(initial=0.0))
        if size == 0.0 or not np.isfinite(size):
            return False
        lam = lam / size
        lam[np.abs(lam) < 1e-12] = 0.0  # rounding left by the projection
        bound = 0.0
        through: list[str] = []
        for c in lay.couplings:
            if not c.term_index.size:
                continue
            lc = lam[c.term_index[0]]
            bound += float(lc @ c.rhs)
            if np.any(lc):
                through.append(f"coupling `{c.name}`")
        for blk in lay.shared:
            prox = self.proxes[blk.name]
            sums: dict[str, np.ndarray] = {}
            for var in blk.vars:
                index = lay.consensus_index.get((blk.name, var.name))
                if index is None:
                    continue
                sums[var.name] = lam[index].sum(axis=0)
                if np.any(lam[index]):
                    through.append(f"consensus on `{blk.name}.{var.name}`")
            if sums and not prox.full_domain:
                sigma = prox.support(sums)
                if not np.isfinite(sigma):
                    return False  # no finite bound: this lambda proves nothing
                bound += float(sigma)
        asked = []
        for o in lay.objects:
            part = lam[o.rows]
            if part.size and float(np.abs(part).max()) > 0.0:
                self.queries[o.obj.name] = CertificateQuery(iteration, lam=part.copy())
                asked.append(o.obj.name)
        if not asked:
            return False
        self.pending = _Pending(iteration, "primal", tuple(asked), bound=bound, describe=", ".join(through))
        return True

    # -- unboundedness ----------------------------------------------------------------------------
    def _dual_query(self, iteration: int, d: np.ndarray) -> None:
        lay = self.layout
        parts: dict[str, np.ndarray] = {}
        start = 0
        Md: list[np.ndarray] = []
        for o in lay.objects:
            n = o.M.shape[1]
            parts[o.obj.name] = d[start : start + n]
            Md.append(o.M @ d[start : start + n])
            start += n
        rows = np.concatenate(Md) if Md else np.zeros(0)
        shared_slope = 0.0
        for blk in lay.shared:
            dz = np.zeros(blk.n)
            for var in blk.vars:
                index = lay.consensus_index.get((blk.name, var.name))
                if index is None:
                    continue
                D = rows[index]
                mean = D.mean(axis=0)
                if float(np.abs(D - mean[None, :]).max(initial=0.0)) > RECESSION_TOL:
                    self.suspicion = "the iterates drift apart along consensus links"
                    self._backoff(iteration)
                    return
                dz[var.offset : var.offset + var.size] = mean
            slope = self.proxes[blk.name].recession_slope(dz)
            if slope is None:
                self.suspicion = f"the iterates drift, but shared block `{blk.name}` bounds the direction"
                self._backoff(iteration)
                return
            shared_slope += slope
        for c in lay.couplings:
            if not c.term_index.size:
                continue
            s = rows[c.term_index].sum(axis=0)
            bad = s > RECESSION_TOL if c.sense == "<=" else s < -RECESSION_TOL if c.sense == ">=" else np.abs(s) > RECESSION_TOL
            if np.any(bad):
                self.suspicion = f"the iterates drift against coupling `{c.name}`"
                self._backoff(iteration)
                return
        asked = []
        for name, part in parts.items():
            self.queries[name] = CertificateQuery(iteration, direction=part.copy())
            asked.append(name)
        self.pending = _Pending(iteration, "dual", tuple(asked), shared_slope=shared_slope)

    # -- verdicts --------------------------------------------------------------------------------
    def _judge(
        self, iteration: int, answers: Mapping[str, CertificateAnswer | None], feasible: bool
    ) -> tuple[str, str] | None:
        p = self.pending
        if p is None:
            return None
        got = {n: a for n, a in answers.items() if a is not None and a.qid == p.qid}
        if any(n not in got for n in p.asked):
            if iteration - p.qid > 3:  # answers lost (a member left): give up on this query
                self.pending = None
                self._backoff(iteration)
            return None
        self.pending = None
        if p.kind == "lineality":
            assert p.lam is not None
            lam = self._project(p.lam, {n: got[n].lineality for n in p.asked})
            if not self._primal_query(iteration, lam):
                self.suspicion = "the duals grow steadily (the constraints may be infeasible)"
                self._backoff(iteration)
            return None
        if p.kind == "primal":
            supports = [got[n].support for n in p.asked]
            if all(s is not None and np.isfinite(s) for s in supports):
                total = float(sum(s for s in supports if s is not None))
                gap = total - p.bound
                if gap > MARGIN * max(1.0, abs(total), abs(p.bound)):
                    return "infeasible", (
                        f"the plan is infeasible through {p.describe or 'its links'} "
                        f"(certificate verified at iteration {p.qid}: "
                        f"min over the local sets of lambda'(rows) = {total:.6g} > sup over the shared sets = "
                        f"{p.bound:.6g}); objects involved: {_names(p.asked)}"
                    )
            self.suspicion = "the duals grow steadily (the constraints may be infeasible)"
        else:
            slopes = [got[n].slope for n in p.asked]
            if all(s is not None for s in slopes):
                total = float(sum(s for s in slopes if s is not None)) + p.shared_slope
                if total < -1e-9 and feasible:
                    moving = [n for n in p.asked if got[n].slope not in (None, 0.0)]
                    return "unbounded", (
                        f"the plan is unbounded below (recession direction verified at iteration {p.qid}: "
                        f"the objective falls by {-total:.6g} per unit step from a feasible point); "
                        f"objects moving: {_names(moving or list(p.asked))}"
                    )
                self.suspicion = "the iterates drift along a direction that does not lower the objective"
            else:
                self.suspicion = (
                    "the iterates drift (the plan may be unbounded; objects that are not quadratic with "
                    "affine constraints cannot certify it)"
                )
        self._backoff(iteration)
        return None


def _names(names: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
