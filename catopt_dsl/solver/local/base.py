"""What every batched local solver shares: the members' stacked data, the interface, the method choice.

A *batch* is a set of objects with one structure (members of a family, ``analysis.GroupAnalysis``)
and one row count, solved by one method. Its x-update, for every member i at once,

    x_i = argmin_x f_i(x) + rho/2 ||M_i x - d_i||^2   over the member's constraints,

takes the centres ``D`` ``(k, r)`` and returns ``X`` ``(k, n)`` with a per-member success mask; a
member whose solve fails (no convergence, a non-finite value) is handed to CVXPY for that step by
the caller (``worker.py``), which then reports CVXPY's status with the object's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from catopt_dsl.ir.analysis import BatchTerm, GroupAnalysis
from catopt_dsl.ir.calculus import CALCULUS

__all__ = [
    "METHODS",
    "Accuracy",
    "BatchData",
    "BatchSolver",
    "StepResult",
    "choose_method",
    "choose_methods",
    "diagonal",
]

#: how an x-update is computed, from the cheapest (see the modules of this package)
METHODS: tuple[str, ...] = (
    "kkt",  # closed form: one linear map per rho (kkt.py)
    "clip",  # the closed form clipped to separable bounds (kkt.py)
    "coord",  # separable smooth terms with bounds: exact 1-D Newton per coordinate (newton.py)
    "newton",  # smooth terms with linear equalities: damped Newton with exact Hessians (newton.py)
    "split",  # quadratic + proximable terms + linear (in)equalities: inner ADMM (split.py)
    "cvxpy",  # CVXPY (worker.py)
    "adapter",  # an external loss: its framework adapter's prox step (external.py)
)


def diagonal(A: np.ndarray) -> bool:
    """Whether every matrix of the stack ``(..., n, n)`` is diagonal."""
    n = A.shape[-1]
    off = A * (1.0 - np.eye(n))
    return not np.count_nonzero(off)


def _coordinatewise(terms: tuple[BatchTerm, ...]) -> bool:
    """Every term elementwise, each entry of its argument depending on one coordinate."""
    for t in terms:
        if CALCULUS[t.atom].kind != "elementwise":
            return False
        if np.any(np.count_nonzero(t.A, axis=2) > 1):
            return False
    return True


def choose_method(group: GroupAnalysis, index: int, M: np.ndarray, separable_rows: bool | None = None) -> tuple[str, str]:
    """The method for member ``index`` of ``group`` with rows ``M``, and why (from the IR class).

    ``separable_rows``: whether ``M'M`` is diagonal, when the caller knows it already."""
    if separable_rows is None:
        separable_rows = diagonal(M.T @ M)
    return choose_methods(group, np.array([index], dtype=np.int64), np.array([separable_rows]))[0]


def choose_methods(group: GroupAnalysis, indices: np.ndarray, separable_rows: np.ndarray) -> list[tuple[str, str]]:
    """:func:`choose_method` for members ``indices`` of ``group`` at once (``separable_rows``: per
    member, whether its ``M'M`` is diagonal). The per-member facts the choice reads (P diagonal,
    general inequality rows) are computed for all of them in one go, and members with the same
    facts share one decision: set-up stays a few array operations per family."""
    indices = np.asarray(indices, dtype=np.int64)
    separable_rows = np.asarray(separable_rows, dtype=bool)
    k = indices.size
    if group.terms is None or group.general is None or group.A_eq is None or group.P is None:
        return [("cvxpy", group.reasons[int(i)]) for i in indices]
    n = group.P.shape[-1]
    P = group.P[indices]
    diag_P = np.count_nonzero(P * (1.0 - np.eye(n)), axis=(1, 2)) == 0 if k else np.zeros(0, dtype=bool)
    general = group.general[indices].any(axis=1) if group.general.shape[-1] else np.zeros(k, dtype=bool)
    inequalities = group.A_in is not None and group.A_in.shape[1] > 0
    equalities = group.A_eq.shape[1] > 0
    coordinatewise: list[bool] = []  # computed on first need (a walk over the terms' rows)
    decided: dict[tuple[str, bool, bool, bool], tuple[str, str]] = {}
    classes = group.classes
    if k and separable_rows.all() == separable_rows.any() and diag_P.all() == diag_P.any() and general.all() == general.any():
        # the usual family: every member has the same facts, so one class means one decision
        first = classes[int(indices[0])]
        if first != "general" and all(classes[i] == first for i in indices.tolist()):
            facts = (bool(separable_rows[0]), bool(diag_P[0]), bool(general[0]))
            one = _decide(first, facts[0], facts[1], not equalities and not facts[2], inequalities, group.terms, coordinatewise)
            return [one] * k
    out: list[tuple[str, str]] = []
    for j, i in enumerate(indices.tolist()):
        cls = group.classes[i]
        if cls == "general":
            out.append(("cvxpy", group.reasons[i]))
            continue
        key = (cls, bool(separable_rows[j]), bool(diag_P[j]), bool(general[j]))
        found = decided.get(key)
        if found is None:
            found = decided[key] = _decide(
                cls, key[1], key[2], not equalities and not key[3], inequalities, group.terms, coordinatewise
            )
        out.append(found)
    return out


def _decide(
    cls: str,
    separable_rows: bool,
    diag_P: bool,
    bounds_only: bool,
    inequalities: bool,
    terms: tuple[BatchTerm, ...],
    coordinatewise: list[bool],
) -> tuple[str, str]:
    if cls == "closed_form_qp":
        return "kkt", "one linear map per rho"
    if cls == "box_qp":
        if separable_rows and diag_P:
            return "clip", "separable: the closed form, clipped to the bounds"
        return "split", "the bounds couple through P or the rows: active-set solves"
    if cls == "qp":
        return "split", "active-set solves (an inner ADMM finds the set)"
    if cls == "smooth":
        if bounds_only and inequalities and separable_rows and diag_P:
            if not coordinatewise:
                coordinatewise.append(_coordinatewise(terms))
            if coordinatewise[0]:
                return "coord", "separable with bounds: exact 1-D Newton per coordinate"
        if not inequalities:
            return "newton", "Newton with exact Hessians"
        if all(CALCULUS[t.atom].prox is not None for t in terms):
            return "split", "inequalities: an inner ADMM with the terms' proxes"
        return "cvxpy", "smooth terms without a closed-form prox under inequality constraints"
    if cls == "prox":
        return "split", "an inner ADMM with the terms' proxes"
    return "cvxpy", f"no local method for class `{cls}`"


@dataclass(eq=False)
class BatchData:
    """The stacked data of the members a batch solves (``k`` members, ``n`` vars, ``r`` rows)."""

    names: tuple[str, ...]
    group: GroupAnalysis
    members: np.ndarray  # (k,) indices into the group
    M: np.ndarray  # (k, r, n)
    e: np.ndarray  # (k, r)
    #: the one ``(r, n)`` matrix every member's M is, when they share it (family members linking
    #: the same vars, ``layout.py``): ``M`` is then a read-only broadcast of it, and the methods
    #: compute ``M'M`` and ``M x`` once for the batch
    template: np.ndarray | None = None

    def take(self, arr: np.ndarray | None) -> np.ndarray:
        """The chosen members' rows of a group array (no copy when they are the whole group)."""
        if arr is None:
            raise ValueError("the group has no such array (its analysis found no form)")
        if self.members.size == arr.shape[0] and np.array_equal(self.members, np.arange(arr.shape[0])):
            return arr
        return arr[self.members]

    @property
    def k(self) -> int:
        return int(self.members.size)

    @property
    def n(self) -> int:
        return int(self.M.shape[2])

    @property
    def r(self) -> int:
        return int(self.M.shape[1])

    def MtM(self) -> np.ndarray:
        """``M_i'M_i`` of every member ``(k, n, n)`` (a broadcast of one product for a shared template)."""
        if self.template is not None:
            T = self.template
            return np.broadcast_to(T.T @ T, (self.k, self.n, self.n))
        return np.matmul(np.swapaxes(self.M, 1, 2), self.M)

    @cached_property
    def selection(self) -> np.ndarray | None:
        """The column each row of the shared template picks, when it is a selection matrix (one
        1.0 per row, zeros elsewhere: consensus rows), else None."""
        T = self.template
        if T is None or T.size == 0:
            return None
        cols = np.argmax(T != 0.0, axis=1)
        pick = np.zeros_like(T)
        pick[np.arange(T.shape[0]), cols] = 1.0
        return cols if np.array_equal(pick, T) else None

    def rows(self, X: np.ndarray, members: np.ndarray | None = None) -> np.ndarray:
        """``M_i x_i + e_i`` of the chosen members (all of them when ``members`` is None), ``X`` ``(k, n)``."""
        cols = self.selection
        if cols is not None:
            A = X[:, cols]  # a gather, exact: what M x is for a selection M (no BLAS call, see split.py)
        elif self.template is not None:
            A = np.einsum("kn,rn->kr", X, self.template)
        else:
            M = self.M if members is None else self.M[members]
            A = np.matmul(M, X[:, :, None])[:, :, 0]
        return A + (self.e if members is None else self.e[members])

    def terms(self) -> tuple[BatchTerm, ...]:
        assert self.group.terms is not None
        return tuple(
            BatchTerm(t.atom, self.take(t.A), self.take(t.b), self.take(t.w), t.M)
            for t in self.group.terms
        )


@dataclass(frozen=True, eq=False)
class StepResult:
    """A batch's x-update: ``X`` ``(k, n)``, which members succeeded, and why the others did not."""

    X: np.ndarray
    ok: np.ndarray  # (k,) bool
    why: dict[int, str]


#: the inner tolerance follows the motion of the prox problem by this factor ...
INNER_TRACK = 0.1
#: ... between a floor this far below the outer stopping tolerance and this relative cap
INNER_FLOOR = 1e-2
INNER_CAP = 1e-2


@dataclass(frozen=True)
class Accuracy:
    """What the outer ADMM will stop at (``eps_abs``/``eps_rel``): inexact inner solves are kept
    ``INNER_FLOOR`` times below it once the outer iteration settles (see :meth:`BatchSolver.tolerance`)."""

    eps_abs: float = 1e-5
    eps_rel: float = 1e-5

    def inner(self, move: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """The inner tolerance for residuals of size ``scale`` when the centres moved by ``move``."""
        floor = INNER_FLOOR * (self.eps_abs + self.eps_rel * scale)
        return np.maximum(floor, np.minimum(INNER_CAP * scale, move))


class BatchSolver:
    """The interface of a batch's method, and what every method shares: the members' current x
    (their warm start), and the inner tolerance rule of the iterative methods.

    The inner tolerance of member i, for a residual of size ``s`` (the larger of the terms it is
    a difference of), at a step with centres d_i after d_i^prev, is

        tol_i = max(INNER_FLOOR * (eps_abs + eps_rel * s), min(INNER_CAP * s, INNER_TRACK * rho * ||d_i - d_i^prev||_inf))

    Inexact ADMM converges when the errors of the x-updates are summable (Eckstein and Bertsekas,
    Math. Programming 1992); the centres move by amounts that shrink geometrically as the outer
    iteration converges, so the errors do too, and once it has converged every x-update is solved
    to a hundredth of the tolerance the outer stopping test uses (with the same absolute and
    relative parts): an ``optimal`` is never read off a loose inner solve. The direct methods
    (``kkt``, ``clip``, ``coord``, ``newton``) solve to rounding and ignore it.
    """

    method = "?"

    def __init__(self, data: BatchData, accuracy: Accuracy | None = None) -> None:
        self.data = data
        self.accuracy = accuracy or Accuracy()
        self.X = np.zeros((data.k, data.n))
        self._D_prev: np.ndarray | None = None
        self._rho_prev: float | None = None
        self.accepted = np.ones(data.k, dtype=bool)
        self.rejected: dict[int, str] = {}
        m, size = data.members, data.group.classes
        #: the batch is its whole group, in order: the group's arrays are the batch's, unindexed
        self.whole = bool(m.size == len(size) and np.array_equal(m, np.arange(m.size)))
        #: ``arange(k)``: passed as ``members`` it means every member in order, which the methods
        #: recognise (``members is self.everyone``) and serve without gathering copies
        self.everyone = np.arange(data.k)
        #: ``||q_i||_inf`` of every member (``report``), computed on first use
        self._q_scale: np.ndarray | None = None

    def reject(self, mask: np.ndarray, why: str) -> None:
        for i in np.flatnonzero(mask & self.accepted):
            self.rejected[int(i)] = why
        self.accepted &= ~mask

    def tolerance(self, D: np.ndarray, rho: float, members: np.ndarray) -> np.ndarray:
        """How far the centres of each member moved since its last step, in gradient units
        (``INNER_TRACK * rho * ||d - d_prev||_inf``; inf at a first step or a new rho): the
        moving part of the rule above (:meth:`Accuracy.inner` adds the floor and the cap)."""
        if self._D_prev is None or self._rho_prev != rho:
            move = np.full(members.size, np.inf)
        else:
            move = INNER_TRACK * rho * np.abs(D - self._D_prev[members]).max(axis=1, initial=0.0)
        if self._D_prev is None:
            self._D_prev = np.zeros((self.data.k, self.data.r))
        self._D_prev[members] = D
        self._rho_prev = rho
        return move

    def solve(self, D: np.ndarray, rho: float, members: np.ndarray) -> StepResult:
        """The x-update of ``members`` (indices into the batch) for centres ``D`` (their rows)."""
        raise NotImplementedError

    def grad_scale(self, X: np.ndarray, members: np.ndarray) -> np.ndarray:
        """``max(||P x||_inf, ||q||_inf)`` per member when the objective is quadratic, else 0
        (the coordinator's rho adaptation reads it; see ``LocalReport.grad_scale``)."""
        g = self.data.group
        if g.P is None or g.q is None or g.terms is None or g.terms:
            return np.zeros(members.size)
        idx = self.data.members[members]
        P, q = g.P[idx], g.q[idx]
        with np.errstate(over="ignore", invalid="ignore"):
            px = np.abs(np.matmul(P, X[:, :, None])[:, :, 0]).max(axis=1, initial=0.0)
        return np.maximum(px, np.abs(q).max(axis=1, initial=0.0))

    def objective(self, X: np.ndarray, members: np.ndarray) -> np.ndarray:
        """f_i(x_i) for the chosen members (exact, from the analysis' form)."""
        return self.data.group.objective_values(X, self.data.members[members])

    def report(self, X: np.ndarray, members: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(objective, grad_scale)`` of the chosen members (all when None) at ``X``: the values of
        :meth:`objective` and :meth:`grad_scale`, with ``P x`` formed once for both when the
        objective is a plain quadratic (the in-process loop asks for both every iteration)."""
        g = self.data.group
        if g.P is None or g.q is None or g.r is None or g.terms is None or g.terms:
            every = np.arange(self.data.k) if members is None else members
            return self.objective(X, every), self.grad_scale(X, every)
        if members is None:
            idx: np.ndarray | slice = slice(None) if self.whole else self.data.members
        else:
            idx = self.data.members[members]
        P, q, r = g.P[idx], g.q[idx], g.r[idx]
        with np.errstate(over="ignore", invalid="ignore"):
            PX = np.matmul(P, X[:, :, None])[:, :, 0]
            f = np.sum(X * (0.5 * PX + q), axis=1) + r
            px = np.abs(PX).max(axis=1, initial=0.0)
        if members is None:  # ||q||_inf of the whole batch does not change: once per solver
            if self._q_scale is None:
                self._q_scale = np.abs(q).max(axis=1, initial=0.0)
            q_scale = self._q_scale
        else:
            q_scale = np.abs(q).max(axis=1, initial=0.0)
        return np.asarray(f), np.maximum(px, q_scale)
