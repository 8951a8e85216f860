"""``analyze_ir``: what the solver and the backends need to know about a plan, computed once.

Pure and read-only: it takes a validated :class:`IRPlan` and returns a :class:`PlanAnalysis`;
nothing downstream re-derives these facts (the solver's workers and shared proxes, the native
backends and the local-solver report all read them from here).

Per object:

* ``form``: its objective as ``1/2 x'Px + q'x + r + sum_k terms_k`` over the stacked vector, when
  it is a sum (with constant scalings, negations, ``sum``/``dot`` weights) of affine parts, of
  quadratic atoms of affine expressions (``sum_squares``, ``square``, ``quad_form`` with a constant
  matrix: these go into P) and of atoms that the local solvers know numerically
  (:data:`catopt_dsl.ir.calculus.CALCULUS`: ``logistic``, ``huber``, ``exp``, ``log``,
  ``log_sum_exp``, ``abs``, ``norm1``, ``norm2``, ...) applied to affine expressions. Each term is
  ``sum_j w_j phi((A x + b)_j)`` (elementwise atoms) or ``w phi(A x + b)`` (reducing atoms);
  ``objective`` is the plain quadratic form when there are no terms;
* ``constraints``: ``A_eq x == b_eq`` and ``A_in x <= b_in``, when every constraint is affine or a
  polyhedral atom of an affine expression against an affine one (``abs(x[1:] - x[:-1]) <= r``,
  ``norm_inf(w) <= c``, ``max(u) <= c``: lifted into the linear rows of the same set, exactly),
  with the rows that touch one coordinate also read off as bounds ``lo <= x <= hi``;
* ``solver_class``: how its x-update can be solved (:data:`SOLVER_CLASSES`), with the reason.

Per shared block: the closed form of its z-update (``c * sum_squares(v)`` and ``c * norm1(v)``
terms, ``c >= 0``, no constraints), its quadratic form and affine constraints when it has them,
and whether z ranges over all of R^n (no constraints, g finite everywhere).

Everything is exact: affine maps come from :mod:`catopt_dsl.ir.affine` (node-by-node linear
algebra, no finite differences). Members of a family whose trees have the same structure (same
nodes, atoms, shapes, constants and param names: only param values differ) are analysed as one
batch: one walk of the tree with a leading batch axis (:func:`structure_key` decides), and each
member's analysis holds views into the batch's arrays (:class:`GroupAnalysis`), which the solver
batches read directly. The analysis of a plan is cached by the plan's identity, so every
consumer of one plan shares one analysis.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from catopt_dsl.check.atoms import ATOMS
from catopt_dsl.ir.affine import (
    affine_coefficients_batched,
    has_var,
)
from catopt_dsl.ir.calculus import CALCULUS
from catopt_dsl.ir.evaluate import evaluate, evaluate_batched
from catopt_dsl.ir.model import (
    IRBinary,
    IRCall,
    IRConst,
    IRConstraint,
    IRExpr,
    IRIndex,
    IRNeg,
    IRObject,
    IRParamRef,
    IRPlan,
    IRShared,
    IRStack,
    IRTranspose,
    IRVar,
    IRVarRef,
)

__all__ = [
    "DOMAIN_RESTRICTED_ATOMS",
    "SOLVER_CLASSES",
    "GroupAnalysis",
    "LinearConstraints",
    "NotQuadratic",
    "ObjectAnalysis",
    "ObjectiveForm",
    "PlanAnalysis",
    "QuadraticForm",
    "SharedAnalysis",
    "Term",
    "analyze_group",
    "analyze_ir",
    "analyze_object",
    "analyze_shared",
    "linear_constraints",
    "psd",
    "quadratic_form",
    "structure_key",
]

#: x-update classes, from the cheapest to the most general
SOLVER_CLASSES: tuple[str, ...] = (
    "closed_form_qp",  # quadratic objective, linear equalities: one linear map per rho
    "box_qp",  # quadratic objective, coordinate bounds only
    "qp",  # quadratic objective, general linear inequalities
    "smooth",  # smooth convex terms (logistic, huber, exp, log, log_sum_exp) + quadratic, linear constraints
    "prox",  # terms with a closed-form prox (abs, norm1, norm2, norm_inf, pos, neg, max, ...), linear constraints
    "general",  # anything else: CVXPY
)

#: atoms whose domain is not all of R^n (the atom table's ``domain``): an objective using one on a
#: variable may keep x from going everywhere even without constraints saying so
DOMAIN_RESTRICTED_ATOMS: frozenset[str] = frozenset(n for n, spec in ATOMS.items() if spec.domain != "all")


class NotQuadratic(ValueError):
    """The expression (or constraint) is not of the required affine / quadratic / term form."""


@dataclass(frozen=True, eq=False)
class QuadraticForm:
    """``1/2 x'Px + q'x + r`` over a stacked variable vector (P symmetric)."""

    P: np.ndarray
    q: np.ndarray
    r: float

    def __add__(self, other: QuadraticForm) -> QuadraticForm:
        return QuadraticForm(self.P + other.P, self.q + other.q, self.r + other.r)

    def scale(self, k: float) -> QuadraticForm:
        return QuadraticForm(k * self.P, k * self.q, k * self.r)

    def value(self, x: np.ndarray) -> float:
        # overflow gives inf (the coordinator names the object); numpy need not warn about it too
        with np.errstate(over="ignore", invalid="ignore"):
            return float(0.5 * x @ (self.P @ x) + self.q @ x + self.r)

    @property
    def convex(self) -> bool:
        scale = max(1.0, float(np.abs(self.P).max(initial=0.0)))
        return bool(np.linalg.eigvalsh(self.P).min(initial=0.0) >= -1e-9 * scale) if self.P.size else True

    @property
    def separable(self) -> bool:
        return not np.count_nonzero(self.P - np.diag(np.diag(self.P)))


@dataclass(frozen=True, eq=False)
class Term:
    """``sum_j w_j atom((A x + b)_j)`` (elementwise atoms) or ``w atom(A x + b)`` (reducing atoms).

    For a concave atom (``log``, ``sqrt``, ``min``) every weight is <= 0, for a convex one >= 0, so
    the term is convex; ``M`` is huber's parameter. Arrays may carry a leading batch axis.
    """

    atom: str
    A: np.ndarray  # (m, n)
    b: np.ndarray  # (m,)
    w: np.ndarray  # (m,) elementwise, (1,) reducing
    M: float = 1.0

    @property
    def elementwise(self) -> bool:
        return CALCULUS[self.atom].kind == "elementwise"

    def value(self, x: np.ndarray) -> float:
        u = self.A @ x + self.b
        return float(term_values(self.atom, u[None, :], self.w[None, :], self.M)[0])


def term_values(atom: str, U: np.ndarray, W: np.ndarray, M: float) -> np.ndarray:
    """The values ``(B,)`` of a term at the arguments ``U`` ``(B, m)`` with weights ``W``."""
    from catopt_dsl.check.atoms import apply_atom

    calc = CALCULUS[atom]
    with np.errstate(all="ignore"):
        if calc.kind == "elementwise":
            opts = {"M": M} if atom == "huber" else {}
            phi = apply_atom(atom, (U,), opts)
            # a zero weight on an entry outside the domain contributes nothing (not 0 * nan)
            return np.asarray(np.sum(np.where(W != 0.0, W * phi, 0.0), axis=-1))
        return np.asarray(W[:, 0] * reduce_value(atom, U))


def reduce_value(atom: str, U: np.ndarray) -> np.ndarray:
    """A reducing atom's value for each row of ``U`` ``(B, m)`` (the definitions of ``evaluate``)."""
    if atom == "log_sum_exp":
        top = np.max(U, axis=-1)
        safe = np.where(np.isfinite(top), top, 0.0)
        return np.where(np.isfinite(top), safe + np.log(np.sum(np.exp(U - safe[:, None]), axis=-1)), top)
    if atom == "sum_squares":
        return np.asarray(np.sum(U * U, axis=-1))
    if atom == "norm1":
        return np.asarray(np.sum(np.abs(U), axis=-1))
    if atom == "norm2":
        return np.asarray(np.sqrt(np.sum(U * U, axis=-1)))
    if atom == "norm_inf":
        return np.asarray(np.max(np.abs(U), axis=-1, initial=0.0))
    if atom == "max":
        return np.asarray(np.max(U, axis=-1))
    if atom == "min":
        return np.asarray(np.min(U, axis=-1))
    raise ValueError(f"`{atom}` is not a reducing atom of the calculus table")


@dataclass(frozen=True, eq=False)
class ObjectiveForm:
    """``quad + sum(terms)``: an objective the local solvers evaluate, differentiate and prox."""

    quad: QuadraticForm
    terms: tuple[Term, ...]

    @property
    def smooth(self) -> bool:
        return all(CALCULUS[t.atom].smooth for t in self.terms)

    @property
    def proximable(self) -> bool:
        return all(CALCULUS[t.atom].prox is not None for t in self.terms)

    def value(self, x: np.ndarray) -> float:
        return self.quad.value(x) + sum(t.value(x) for t in self.terms)


@dataclass(frozen=True, eq=False)
class LinearConstraints:
    """``A_eq x == b_eq`` and ``A_in x <= b_in``; ``lo``/``hi`` are the bounds among the inequality
    rows (rows touching one coordinate), ``general`` marks the other inequality rows."""

    A_eq: np.ndarray
    b_eq: np.ndarray
    A_in: np.ndarray
    b_in: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    general: np.ndarray  # bool per inequality row: True when it is not a bound

    @property
    def has_bounds(self) -> bool:
        return bool(np.isfinite(self.lo).any() or np.isfinite(self.hi).any())

    @property
    def only_bounds(self) -> bool:
        return not self.A_eq.shape[0] and not bool(self.general.any())


@dataclass(frozen=True, eq=False)
class ObjectAnalysis:
    """One object's facts: views into the batch it was analysed in (built on first access, so a
    family of thousands costs one batch, not thousands of small objects, until someone asks)."""

    name: str
    full_domain: bool  # the objective is finite everywhere
    solver_class: str
    reason: str
    #: the batch this object was analysed in (members of one structure), and its index there
    group: GroupAnalysis
    index: int = 0

    @cached_property
    def form(self) -> ObjectiveForm | None:
        """The objective as quadratic + terms (None: not of that form; see ``reason``)."""
        g, i = self.group, self.index
        if g.P is None or g.q is None or g.r is None or g.terms is None:
            return None
        return ObjectiveForm(QuadraticForm(g.P[i], g.q[i], float(g.r[i])), tuple(t.member(i) for t in g.terms))

    @cached_property
    def objective(self) -> QuadraticForm | None:
        """The objective, when it is quadratic."""
        form = self.form
        return None if form is None or form.terms else form.quad

    @cached_property
    def constraints(self) -> LinearConstraints | None:
        g, i = self.group, self.index
        if g.A_eq is None or g.b_eq is None or g.A_in is None or g.b_in is None:
            return None
        assert g.lo is not None and g.hi is not None and g.general is not None
        return LinearConstraints(g.A_eq[i], g.b_eq[i], g.A_in[i], g.b_in[i], g.lo[i], g.hi[i], g.general[i])


@dataclass(frozen=True, eq=False)
class SharedAnalysis:
    name: str
    #: var -> (atom, coefficient) of a closed-form z-update, or None when there is none
    closed: Mapping[str, tuple[str, float]] | None
    objective: QuadraticForm | None
    constraints: LinearConstraints | None
    full_domain: bool  # no constraints and g finite everywhere


@dataclass(frozen=True, eq=False)
class BatchTerm:
    """A :class:`Term` for every member of a group: arrays with a leading batch axis."""

    atom: str
    A: np.ndarray  # (B, m, n)
    b: np.ndarray  # (B, m)
    w: np.ndarray  # (B, m) or (B, 1)
    M: float = 1.0

    def member(self, i: int) -> Term:
        return Term(self.atom, self.A[i], self.b[i], self.w[i], self.M)

    def values(self, X: np.ndarray) -> np.ndarray:
        """The term's value for every member at ``X`` ``(B, n)``."""
        U = np.einsum("bmn,bn->bm", self.A, X) + self.b
        return term_values(self.atom, U, self.w, self.M)


@dataclass(frozen=True, eq=False)
class GroupAnalysis:
    """Objects with one structure (family members), analysed together; arrays lead with members.

    ``P``/``q``/``r`` and ``terms`` are None when the objective is not of the quadratic + terms
    form, ``A_eq`` ... ``general`` None when a constraint is not linear (or liftable).
    """

    names: tuple[str, ...]
    n: int
    P: np.ndarray | None
    q: np.ndarray | None
    r: np.ndarray | None
    terms: tuple[BatchTerm, ...] | None
    A_eq: np.ndarray | None
    b_eq: np.ndarray | None
    A_in: np.ndarray | None
    b_in: np.ndarray | None
    lo: np.ndarray | None
    hi: np.ndarray | None
    general: np.ndarray | None
    full_domain: bool
    classes: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def has_form(self) -> bool:
        return self.P is not None

    def objective_values(self, X: np.ndarray, members: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The objective of the chosen members at ``X`` ``(k, n)`` (rows of ``X`` follow ``members``)."""
        assert self.P is not None and self.q is not None and self.r is not None and self.terms is not None
        P, q, r = self.P[members], self.q[members], self.r[members]
        with np.errstate(over="ignore", invalid="ignore"):
            PX = np.matmul(P, X[:, :, None])[:, :, 0]
            out = np.sum(X * (0.5 * PX + q), axis=1) + r
            for t in self.terms:
                U = np.matmul(t.A[members], X[:, :, None])[:, :, 0] + t.b[members]
                out = out + term_values(t.atom, U, t.w[members], t.M)
        return np.asarray(out)


@dataclass(eq=False)
class PlanAnalysis:
    """The analysis of one plan; objects (a whole structure group at a time) and shared blocks
    are analysed on first request. Lowering (``catopt_dsl.compile.analyze``) asks for every
    object at once (:meth:`classify`), so a compiled plan carries its classes; a plan built
    another way (a delta, a test) is analysed when first asked."""

    plan: IRPlan
    _objects: dict[str, ObjectAnalysis] = field(default_factory=dict)
    _shared: dict[str, SharedAnalysis] = field(default_factory=dict)
    _groups: dict[str, tuple[IRObject, ...]] | None = None

    def _group_members(self, name: str) -> tuple[IRObject, ...]:
        if self._groups is None:
            by_key: dict[tuple, list[IRObject]] = {}
            for o in self.plan.objects:
                by_key.setdefault(structure_key(o), []).append(o)
            groups: dict[str, tuple[IRObject, ...]] = {}
            for members in by_key.values():
                group = tuple(members)  # one tuple per group, shared by its members (not one each)
                for o in members:
                    groups[o.name] = group
            self._groups = groups
        found = self._groups.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def object(self, name: str) -> ObjectAnalysis:
        found = self._objects.get(name)
        if found is None:
            members = self._group_members(name)
            for o, a in zip(members, analyze_group(members)):
                self._objects[o.name] = a
            found = self._objects[name]
        return found

    def classify(self) -> PlanAnalysis:
        """Analyse every object now (a structure group at a time) and return self: lowering calls
        this, so each object's solver class and data are decided at compile time, once, and carried
        with the plan (``catoptc solve`` and the backends read them, never re-derive them)."""
        for o in self.plan.objects:
            if o.name not in self._objects:
                self.object(o.name)
        return self

    def shared(self, name: str) -> SharedAnalysis:
        found = self._shared.get(name)
        if found is None:
            found = self._shared[name] = _analyse_shared(self.plan.shared_block(name))
        return found

    def solver_classes(self) -> dict[str, int]:
        """How many objects fall in each solver class (every class listed, zeros included)."""
        counts = dict.fromkeys(SOLVER_CLASSES, 0)
        for o in self.plan.objects:
            counts[self.object(o.name).solver_class] += 1
        return counts


_CACHE: weakref.WeakKeyDictionary[IRPlan, PlanAnalysis] = weakref.WeakKeyDictionary()


def analyze_ir(plan: IRPlan) -> PlanAnalysis:
    """The analysis of ``plan`` (one per plan object: later calls return the same analysis)."""
    found = _CACHE.get(plan)
    if found is None:
        found = _CACHE[plan] = PlanAnalysis(plan)
    return found


def analyze_object(obj: IRObject) -> ObjectAnalysis:
    """One object's analysis (for a worker built without its plan; :func:`analyze_ir` caches)."""
    return analyze_group([obj])[0]


def analyze_shared(block: IRShared) -> SharedAnalysis:
    """One shared block's analysis (for a prox built without its plan)."""
    return _analyse_shared(block)


# ---------------------------------------------------------------------------------------------
# Structure: what must agree for objects to be analysed (and solved) as one batch
# ---------------------------------------------------------------------------------------------


def structure_key(obj: IRObject) -> tuple:
    """A hashable description of everything in ``obj`` except its param values.

    Two objects with equal keys have the same vars, the same constraint senses, and objective and
    constraint trees that differ only in the values of the params they name.
    """
    out: list[object] = [tuple((v.name, v.shape, v.offset) for v in obj.vars)]
    out.append(tuple((p.name, p.dtype, p.shape) for p in obj.params))
    _walk_key(obj.objective, out)
    for con in obj.constraints:
        out.append(con.op)
        _walk_key(con.lhs, out)
        _walk_key(con.rhs, out)
    return tuple(out)


def _walk_key(e: IRExpr, out: list[object]) -> None:
    # exact type tests, the commonest nodes first: this runs once per node of every object when
    # a plan is first analysed (the IR node classes have no subclasses)
    t = type(e)
    kind = t.__name__
    if t is IRBinary:
        out.append((kind, e.op, tuple(e.shape)))  # type: ignore[union-attr]
        _walk_key(e.left, out)  # type: ignore[union-attr]
        _walk_key(e.right, out)  # type: ignore[union-attr]
        return
    if t is IRParamRef or t is IRVarRef:
        out.append((kind, e.name, tuple(e.shape)))  # type: ignore[union-attr]
        return
    if t is IRCall:
        out.append((kind, e.atom, tuple(e.shape), repr(e.options), len(e.args)))  # type: ignore[union-attr]
        for child in e.args:  # type: ignore[union-attr]
            _walk_key(child, out)
        return
    if t is IRConst:
        value = np.ascontiguousarray(e.value)  # type: ignore[union-attr]
        raw = value.tobytes()
        out.append((kind, e.shape, value.dtype.str, raw if len(raw) <= 256 else hashlib.sha256(raw).digest()))
        return
    if t is IRIndex:
        out.append((kind, e.key, tuple(e.shape)))  # type: ignore[union-attr]
    elif t is IRStack:
        out.append((kind, len(e.elements), tuple(e.shape)))  # type: ignore[union-attr]
    else:
        out.append((kind, tuple(e.shape)))
    for child in _children(e):
        _walk_key(child, out)


# ---------------------------------------------------------------------------------------------
# Forms
# ---------------------------------------------------------------------------------------------


def _params(values: tuple) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(p.value, dtype=np.float64) for p in values}


def _scalar_const(expr: IRExpr, params: Mapping[str, np.ndarray]) -> float | None:
    if tuple(expr.shape) != () or has_var(expr):
        return None
    return float(np.asarray(evaluate(expr, {}, params)))


def _children(expr: IRExpr) -> tuple[IRExpr, ...]:
    if isinstance(expr, IRBinary):
        return (expr.left, expr.right)
    if isinstance(expr, IRCall):
        return tuple(expr.args)
    if isinstance(expr, IRStack):
        return tuple(expr.elements)
    if isinstance(expr, (IRNeg, IRTranspose)):
        return (expr.operand,)
    if isinstance(expr, IRIndex):
        return (expr.base,)
    return ()


def _atoms(expr: IRExpr) -> set[str]:
    out = {expr.atom} if isinstance(expr, IRCall) else set()
    for child in _children(expr):
        out |= _atoms(child)
    return out


def _is_nonlinear(expr: IRExpr) -> bool:
    """Whether the tree has a part that is not affine (cheap pre-check before affine extraction)."""
    if isinstance(expr, IRCall):
        if expr.atom not in ("sum", "mean", "multiply", "dot", "transpose") and has_var(expr):
            return True
    if isinstance(expr, IRBinary) and expr.op in ("*", "@", "/") and has_var(expr.left) and has_var(expr.right):
        return True
    return any(_is_nonlinear(child) for child in _children(expr))


@dataclass
class _RowTerm:
    """A term on the rows of a vector expression: entry j of ``U = A x + b`` adds
    ``w_j atom(U_j)`` to row ``row[j]`` (elementwise), or ``w atom(U)`` to row ``row[0]`` (reducing)."""

    atom: str
    A: np.ndarray  # (B, mu, n)
    b: np.ndarray  # (B, mu)
    w: np.ndarray  # (B, mu) or (B, 1)
    row: np.ndarray  # (mu,) or (1,)
    M: float = 1.0
    P: np.ndarray | None = None  # quad_form's (symmetrised) matrix, (B, mu, mu)


@dataclass
class _Rows:
    """A vector expression of m rows: ``A x + c`` plus terms (batched over members)."""

    m: int
    A: np.ndarray  # (B, m, n)
    c: np.ndarray  # (B, m)
    terms: list[_RowTerm]


class _Decomposer:
    """Splits expressions into affine rows and terms, for a batch of members at once."""

    def __init__(self, vars: tuple[IRVar, ...], params: Sequence[Mapping[str, np.ndarray]], stacked: dict) -> None:
        self.vars = vars
        self.params = params
        self.stacked = stacked
        self.count = len(params)
        self.n = max((v.offset + v.size for v in vars), default=0)

    def affine(self, e: IRExpr) -> tuple[np.ndarray, np.ndarray]:
        try:
            return affine_coefficients_batched(e, self.vars, self.params, self.stacked)
        except ValueError as exc:
            raise NotQuadratic(str(exc)) from None

    def value(self, e: IRExpr) -> np.ndarray:
        return np.asarray(evaluate_batched(e, self.params, self.stacked), dtype=np.float64).reshape(self.count, -1)

    def rows(self, e: IRExpr) -> _Rows:
        m = _size(tuple(e.shape))
        if not _is_nonlinear(e):
            A, c = self.affine(e)
            return _Rows(m, A, c, [])
        if isinstance(e, IRNeg):
            return self.scale(self.rows(e.operand), -np.ones((self.count, 1)))
        if isinstance(e, IRBinary):
            return self.binary(e, m)
        if isinstance(e, IRCall):
            return self.call(e, m)
        raise NotQuadratic(f"a {type(e).__name__} of a nonlinear expression")

    def binary(self, e: IRBinary, m: int) -> _Rows:
        if e.op in ("+", "-"):
            left = self.broadcast(self.rows(e.left), m)
            right = self.broadcast(self.rows(e.right), m)
            if e.op == "-":
                right = self.scale(right, -np.ones((self.count, 1)))
            return _Rows(m, left.A + right.A, left.c + right.c, left.terms + right.terms)
        if e.op == "*":
            for k_expr, x_expr in ((e.left, e.right), (e.right, e.left)):
                if not has_var(k_expr):
                    return self.scale(self.broadcast(self.rows(x_expr), m), self.value(k_expr))
            raise NotQuadratic("product of two non-constant expressions")
        if e.op == "/":
            if has_var(e.right):
                raise NotQuadratic("division by a non-constant")
            d = self.value(e.right)
            if np.any(d == 0.0):
                raise NotQuadratic("division by zero")
            return self.scale(self.rows(e.left), 1.0 / d)
        if e.op == "@":
            for k_expr, x_expr in ((e.left, e.right), (e.right, e.left)):
                if not has_var(k_expr) and len(k_expr.shape) == 1 and len(x_expr.shape) == 1:
                    return self.total(self.scale(self.rows(x_expr), self.value(k_expr)))
            raise NotQuadratic("a matrix product with a nonlinear expression")
        raise NotQuadratic(f"operator `{e.op}`")

    def call(self, e: IRCall, m: int) -> _Rows:
        atom, opts = e.atom, dict(e.options)
        if atom in ("sum", "mean") and opts.get("axis") is None:
            rows = self.total(self.rows(e.args[0]))
            return self.scale(rows, np.full((self.count, 1), 1.0 / rows_size(e.args[0]))) if atom == "mean" else rows
        if atom == "multiply":
            return self.binary(IRBinary("*", e.args[0], e.args[1], e.shape), m)
        if atom == "dot":
            return self.binary(IRBinary("@", e.args[0], e.args[1], e.shape), m)
        calc = CALCULUS.get(atom)
        if atom == "quad_form":
            U, K = e.args
            if has_var(K):
                raise NotQuadratic("quad_form with a variable matrix")
            A, b = self.affine_arg(U, atom)
            mu = A.shape[1]
            Kv = self.value(K).reshape(self.count, mu, mu)
            Ks = 0.5 * (Kv + np.swapaxes(Kv, 1, 2))
            return _Rows(1, np.zeros((self.count, 1, self.n)), np.zeros((self.count, 1)),
                         [_RowTerm(atom, A, b, np.ones((self.count, 1)), np.zeros(1, dtype=np.int64), P=Ks)])
        if calc is None or opts.get("axis") is not None:
            raise NotQuadratic(f"atom `{atom}` is not in the local solvers' table" if calc is None
                               else f"`{atom}` along an axis")
        A, b = self.affine_arg(e.args[0], atom)
        M = float(opts.get("M", 1.0)) if atom == "huber" else 1.0
        if atom == "huber" and len(e.args) > 1:
            M = float(self.value(e.args[1]).reshape(self.count, -1)[0, 0])
        if calc.kind == "elementwise":
            mu = A.shape[1]
            term = _RowTerm(atom, A, b, np.ones((self.count, mu)), np.arange(mu), M)
            return _Rows(mu, np.zeros((self.count, mu, self.n)), np.zeros((self.count, mu)), [term])
        term = _RowTerm(atom, A, b, np.ones((self.count, 1)), np.zeros(1, dtype=np.int64), M)
        return _Rows(1, np.zeros((self.count, 1, self.n)), np.zeros((self.count, 1)), [term])

    def affine_arg(self, e: IRExpr, atom: str) -> tuple[np.ndarray, np.ndarray]:
        if _is_nonlinear(e):
            raise NotQuadratic(f"`{atom}` of a nonlinear expression")
        return self.affine(e)

    def scale(self, rows: _Rows, k: np.ndarray) -> _Rows:
        """Multiply row i by ``k[:, i]`` (``k`` ``(B, m)``, or ``(B, 1)`` for all rows)."""
        k = np.asarray(k, dtype=np.float64).reshape(self.count, -1)
        if k.shape[1] not in (1, rows.m):
            raise NotQuadratic("a scaling of another shape")
        full = np.broadcast_to(k, (self.count, rows.m))
        terms = [
            _RowTerm(t.atom, t.A, t.b, t.w * full[:, t.row], t.row, t.M, t.P) for t in rows.terms
        ]
        return _Rows(rows.m, rows.A * full[:, :, None], rows.c * full, terms)

    def broadcast(self, rows: _Rows, m: int) -> _Rows:
        if rows.m == m:
            return rows
        if rows.m != 1:
            raise NotQuadratic(f"cannot broadcast {rows.m} rows to {m}")
        terms = []
        for t in rows.terms:
            if CALCULUS.get(t.atom) is None or CALCULUS[t.atom].kind != "elementwise" or t.A.shape[1] != 1:
                raise NotQuadratic(f"`{t.atom}` broadcast over a vector")
            terms.append(_RowTerm(t.atom, np.repeat(t.A, m, axis=1), np.repeat(t.b, m, axis=1),
                                  np.repeat(t.w, m, axis=1), np.arange(m), t.M, t.P))
        return _Rows(m, np.repeat(rows.A, m, axis=1), np.repeat(rows.c, m, axis=1), terms)

    def total(self, rows: _Rows) -> _Rows:
        """The sum of the rows (one row)."""
        terms = [_RowTerm(t.atom, t.A, t.b, t.w, np.zeros_like(t.row), t.M, t.P) for t in rows.terms]
        return _Rows(1, rows.A.sum(axis=1, keepdims=True), rows.c.sum(axis=1, keepdims=True), terms)


def rows_size(e: IRExpr) -> int:
    return _size(tuple(e.shape))


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _check_convex_term(t: _RowTerm) -> None:
    calc = CALCULUS.get(t.atom)
    if calc is None:  # quad_form: its sign comes from the quadratic's convexity check
        return
    if np.any(calc.sign * t.w < 0.0):
        raise NotQuadratic(f"a `{t.atom}` term with a weight of the wrong sign (not convex)")


@dataclass(frozen=True, eq=False)
class _BatchForm:
    P: np.ndarray
    q: np.ndarray
    r: np.ndarray
    terms: tuple[BatchTerm, ...]


def _objective_form(d: _Decomposer, expr: IRExpr) -> _BatchForm:
    if tuple(expr.shape) != ():
        raise NotQuadratic("the objective is not a scalar")
    rows = d.rows(expr)
    B, n = d.count, d.n
    P = np.zeros((B, n, n))
    q = rows.A[:, 0, :].copy()
    r = rows.c[:, 0].copy()
    terms: list[BatchTerm] = []
    with np.errstate(over="ignore", invalid="ignore"):  # huge data: inf, reported downstream
        for t in rows.terms:
            w = t.w
            AT = np.swapaxes(t.A, 1, 2)
            if t.atom == "square":
                WA = t.A * w[:, :, None]
                P += 2.0 * np.matmul(AT, WA)
                q += 2.0 * np.matmul(AT, (w * t.b)[:, :, None])[:, :, 0]
                r += np.sum(w * t.b * t.b, axis=1)
            elif t.atom == "sum_squares":
                P += 2.0 * w[:, 0, None, None] * np.matmul(AT, t.A)
                q += 2.0 * w[:, 0, None] * np.matmul(AT, t.b[:, :, None])[:, :, 0]
                r += w[:, 0] * np.sum(t.b * t.b, axis=1)
            elif t.atom == "quad_form":
                assert t.P is not None
                KA = np.matmul(t.P, t.A)
                P += 2.0 * w[:, 0, None, None] * np.matmul(AT, KA)
                q += 2.0 * w[:, 0, None] * np.matmul(np.swapaxes(KA, 1, 2), t.b[:, :, None])[:, :, 0]
                r += w[:, 0] * np.einsum("bm,bmk,bk->b", t.b, t.P, t.b)
            else:
                _check_convex_term(t)
                terms.append(BatchTerm(t.atom, np.ascontiguousarray(t.A), np.ascontiguousarray(t.b),
                                       np.ascontiguousarray(w), t.M))
    return _BatchForm(0.5 * (P + np.swapaxes(P, 1, 2)), q, r, tuple(terms))


@dataclass(frozen=True, eq=False)
class _BatchConstraints:
    A_eq: np.ndarray
    b_eq: np.ndarray
    A_in: np.ndarray
    b_in: np.ndarray


def _constraint_rows(d: _Decomposer, constraints: tuple[IRConstraint, ...]) -> _BatchConstraints:
    B, n = d.count, d.n
    eq_A, eq_b = [np.zeros((B, 0, n))], [np.zeros((B, 0))]
    in_A, in_b = [np.zeros((B, 0, n))], [np.zeros((B, 0))]
    for con in constraints:
        left, right = d.rows(con.lhs), d.rows(con.rhs)
        m = max(left.m, right.m)
        left, right = d.broadcast(left, m), d.broadcast(right, m)
        g = left if con.op != ">=" else right
        h = right if con.op != ">=" else left
        # g - h (op) 0
        A = g.A - h.A
        c = g.c - h.c
        terms = g.terms + [_RowTerm(t.atom, t.A, t.b, -t.w, t.row, t.M, t.P) for t in h.terms]
        if not terms:
            (eq_A if con.op == "==" else in_A).append(A)
            (eq_b if con.op == "==" else in_b).append(-c)
            continue
        if con.op == "==":
            raise NotQuadratic("an equality with a nonlinear side")
        if len(terms) != 1:
            raise NotQuadratic("a constraint with more than one nonlinear term")
        t = terms[0]
        calc = CALCULUS.get(t.atom)
        if calc is None or calc.pieces is None:
            raise NotQuadratic(f"a constraint on `{t.atom}` (only polyhedral atoms lift to linear rows)")
        w = calc.sign * t.w  # >= 0 when the constraint is convex
        if np.any(w < 0.0):
            raise NotQuadratic(f"a `{t.atom}` constraint that is not convex")
        if calc.kind == "elementwise":
            if len(set(t.row.tolist())) != t.row.size:
                raise NotQuadratic(f"a sum of `{t.atom}` in a constraint (needs extra variables)")
            for slope, offset in calc.pieces:
                rowsA = A[:, t.row, :] + (w * slope)[:, :, None] * t.A
                rowsc = c[:, t.row] + w * (slope * t.b + offset)
                in_A.append(rowsA)
                in_b.append(-rowsc)
            untouched = np.setdiff1d(np.arange(m), t.row)
            if untouched.size:
                in_A.append(A[:, untouched, :])
                in_b.append(-c[:, untouched])
        else:
            r0 = int(t.row[0])
            for (slope,) in calc.pieces:
                in_A.append(A[:, [r0], :] + (w[:, 0, None, None] * slope) * t.A)
                in_b.append(-(c[:, [r0]] + w[:, 0, None] * slope * t.b))
            others = np.setdiff1d(np.arange(m), [r0])
            if others.size:
                in_A.append(A[:, others, :])
                in_b.append(-c[:, others])
    return _BatchConstraints(
        np.concatenate(eq_A, axis=1), np.concatenate(eq_b, axis=1),
        np.concatenate(in_A, axis=1), np.concatenate(in_b, axis=1),
    )  # fmt: skip


def _bounds(A_in: np.ndarray, b_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per member: ``lo``, ``hi`` from the rows touching one coordinate, and which rows are general."""
    B, _k, n = A_in.shape
    lo, hi = np.full((B, n), -np.inf), np.full((B, n), np.inf)
    nnz = np.count_nonzero(A_in, axis=2)  # (B, k)
    general = nnz > 1
    # an empty row that fails (0 <= negative) stays "general": the solver must see it
    general |= (nnz == 0) & (b_in < 0)
    single = nnz == 1
    if single.any():
        j = np.argmax(np.abs(A_in), axis=2)  # (B, k)
        coef = np.take_along_axis(A_in, j[:, :, None], axis=2)[:, :, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = b_in / np.where(single, coef, 1.0)
        bi, ki = np.nonzero(single & (coef > 0))
        np.minimum.at(hi, (bi, j[bi, ki]), bound[bi, ki])
        bi, ki = np.nonzero(single & (coef < 0))
        np.maximum.at(lo, (bi, j[bi, ki]), bound[bi, ki])
    return lo, hi, general


def quadratic_form(expr: IRExpr, vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]) -> QuadraticForm:
    """The exact ``(P, q, r)`` of a scalar quadratic expression; :class:`NotQuadratic` otherwise.

    Convexity is not checked here (see :attr:`QuadraticForm.convex`).
    """
    d = _Decomposer(vars, [params], {})
    try:
        form = _objective_form(d, expr)
    except KeyError as exc:
        raise NotQuadratic(f"unknown name {exc}") from None
    if form.terms:
        raise NotQuadratic(f"atom `{form.terms[0].atom}` is not quadratic")
    return QuadraticForm(form.P[0], form.q[0], float(form.r[0]))


def linear_constraints(
    constraints: tuple[IRConstraint, ...], vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]
) -> LinearConstraints:
    """The constraints as :class:`LinearConstraints` (polyhedral atoms lifted); :class:`NotQuadratic`
    if one is neither affine nor liftable."""
    d = _Decomposer(vars, [params], {})
    try:
        cons = _constraint_rows(d, constraints)
    except KeyError as exc:
        raise NotQuadratic(f"unknown name {exc}") from None
    lo, hi, general = _bounds(cons.A_in, cons.b_in)
    return LinearConstraints(cons.A_eq[0], cons.b_eq[0], cons.A_in[0], cons.b_in[0], lo[0], hi[0], general[0])


# ---------------------------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------------------------


def analyze_group(objects: Sequence[IRObject]) -> list[ObjectAnalysis]:
    """The analyses of objects that share one :func:`structure_key`, computed as one batch."""
    rep = objects[0]
    B = len(objects)
    params = [_params(o.params) for o in objects]
    stacked: dict[str, np.ndarray] = {}
    d = _Decomposer(rep.vars, params, stacked)
    full_domain = not (_atoms(rep.objective) & DOMAIN_RESTRICTED_ATOMS)
    form: _BatchForm | None
    cons: _BatchConstraints | None
    try:
        form = _objective_form(d, rep.objective)
        form_why = ""
    except (NotQuadratic, KeyError) as exc:
        form, form_why = None, _why(exc)
    try:
        cons = _constraint_rows(d, rep.constraints)
        cons_why = ""
    except (NotQuadratic, KeyError) as exc:
        cons, cons_why = None, _why(exc)
    n = d.n
    lo = hi = general = None
    if cons is not None:
        lo, hi, general = _bounds(cons.A_in, cons.b_in)
    convex = np.ones(B, dtype=bool)
    if form is not None and n:
        convex = psd(form.P, 1e-9)
    classes: list[str] = []
    reasons: list[str] = []
    # a member's class depends on it only through its convexity and whether it has general
    # inequality rows: decided once per distinct pair, not once per member
    general_any: np.ndarray = np.asarray(general.any(axis=1)) if general is not None else np.zeros(B, dtype=bool)
    decided: dict[tuple[bool, bool], tuple[str, str]] = {}
    if B and bool(convex.all()) and not bool(general_any.any()):  # the usual family: one pair for all
        one = _classify(form, form_why, cons, cons_why, general, True, 0)
        classes, reasons = [one[0]] * B, [one[1]] * B
    for i in range(B if not classes else 0):
        key = (bool(convex[i]), bool(general_any[i]))
        found = decided.get(key)
        if found is None:
            found = decided[key] = _classify(form, form_why, cons, cons_why, general, key[0], i)
        classes.append(found[0])
        reasons.append(found[1])
    group = GroupAnalysis(
        names=tuple(o.name for o in objects),
        n=n,
        P=None if form is None else form.P,
        q=None if form is None else form.q,
        r=None if form is None else form.r,
        terms=None if form is None else form.terms,
        A_eq=None if cons is None else cons.A_eq,
        b_eq=None if cons is None else cons.b_eq,
        A_in=None if cons is None else cons.A_in,
        b_in=None if cons is None else cons.b_in,
        lo=lo,
        hi=hi,
        general=general,
        full_domain=full_domain,
        classes=tuple(classes),
        reasons=tuple(reasons),
    )
    return [
        ObjectAnalysis(o.name, full_domain, classes[i], reasons[i], group, i) for i, o in enumerate(objects)
    ]


def psd(P: np.ndarray, tol: float) -> np.ndarray:
    """Per matrix of the stack: smallest eigenvalue >= -tol * max(1, max |P|) (a Cholesky of the
    shifted matrices first; the eigenvalues only when some member fails it)."""
    B, n = P.shape[0], P.shape[-1]
    scale = np.maximum(1.0, np.abs(P).max(axis=(1, 2)))
    finite = np.isfinite(scale)  # max propagates a NaN and keeps an infinity: finite iff every entry is
    out = np.zeros(B, dtype=bool)
    if not finite.any():
        return out
    every = bool(finite.all())
    shifted = (P if every else P[finite]) + (tol * (scale if every else scale[finite]))[:, None, None] * np.eye(n)
    try:
        np.linalg.cholesky(shifted)
        out[finite] = True
        return out
    except np.linalg.LinAlgError:
        pass
    with np.errstate(invalid="ignore"):
        eig = np.linalg.eigvalsh(P[finite]).min(axis=1)
    out[finite] = eig >= -tol * scale[finite]
    return out


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, NotQuadratic) else f"unknown name {exc}"


def _classify(
    form: _BatchForm | None,
    form_why: str,
    cons: _BatchConstraints | None,
    cons_why: str,
    general: np.ndarray | None,
    convex: bool,
    i: int,
) -> tuple[str, str]:
    if form is None:
        return "general", f"the objective is not quadratic plus known terms ({form_why})"
    if not convex:
        return "general", "the quadratic part of the objective is not convex (CVXPY decides)"
    if cons is None:
        return "general", f"a constraint is not linear ({cons_why})"
    assert general is not None
    inequalities = cons.A_in.shape[1] > 0
    bounds_only = cons.A_eq.shape[1] == 0 and not bool(general[i].any())
    if not form.terms:
        if not inequalities:
            return "closed_form_qp", "quadratic objective, linear equalities only"
        if bounds_only:
            return "box_qp", "quadratic objective, coordinate bounds only"
        return "qp", "quadratic objective, linear inequalities"
    atoms = sorted({t.atom for t in form.terms})
    shown = ", ".join(f"`{a}`" for a in atoms)
    if all(CALCULUS[a].smooth for a in atoms):
        return "smooth", f"smooth terms ({shown}) with exact derivatives" + (
            ", linear constraints" if inequalities or cons.A_eq.shape[1] else "")
    if all(CALCULUS[a].prox is not None for a in atoms):
        return "prox", f"terms with closed-form proxes ({shown})" + (
            ", linear constraints" if inequalities or cons.A_eq.shape[1] else "")
    lacking = [a for a in atoms if CALCULUS[a].prox is None]
    return "general", (f"nonsmooth terms mixed with terms without a closed-form prox ({', '.join(f'`{a}`' for a in lacking)})")


# ---------------------------------------------------------------------------------------------
# Shared blocks
# ---------------------------------------------------------------------------------------------


def _closed_terms(expr: IRExpr, params: Mapping[str, np.ndarray], k: float, out: list[tuple[str, str, float]]) -> bool:
    """Flatten ``expr`` into ``(atom, var, coefficient)`` terms; False when not of the closed form."""
    if isinstance(expr, IRNeg):  # `maximize -c * norm1(w)` is stored negated: look through it
        return _closed_terms(expr.operand, params, -k, out)
    if isinstance(expr, IRBinary):
        if expr.op in ("+", "-"):
            sign = 1.0 if expr.op == "+" else -1.0
            return _closed_terms(expr.left, params, k, out) and _closed_terms(expr.right, params, sign * k, out)
        if expr.op == "*":
            for c_expr, t_expr in ((expr.left, expr.right), (expr.right, expr.left)):
                c = _scalar_const(c_expr, params)
                if c is not None:
                    return _closed_terms(t_expr, params, k * c, out)
            return False
        if expr.op == "/":
            c = _scalar_const(expr.right, params)
            return c is not None and c != 0.0 and _closed_terms(expr.left, params, k / c, out)
        return False
    if isinstance(expr, IRCall) and expr.atom in ("sum_squares", "norm1") and len(expr.args) == 1:
        arg = expr.args[0]
        if isinstance(arg, IRVarRef) and k >= 0.0:
            out.append((expr.atom, arg.name, k))
            return True
    return False


def _analyse_shared(block: IRShared) -> SharedAnalysis:
    params = _params(block.params)
    closed: dict[str, tuple[str, float]] | None = None
    if not block.constraints:
        terms: list[tuple[str, str, float]] = []
        ok = block.objective is None or _closed_terms(block.objective, params, 1.0, terms)
        names = [t[1] for t in terms]
        if ok and len(set(names)) == len(names):
            closed = {var: (atom, c) for atom, var, c in terms}
    n = block.n
    try:
        quad: QuadraticForm | None = (
            quadratic_form(block.objective, block.vars, params)
            if block.objective is not None
            else QuadraticForm(np.zeros((n, n)), np.zeros(n), 0.0)
        )
    except (NotQuadratic, KeyError):
        quad = None
    try:
        cons: LinearConstraints | None = linear_constraints(block.constraints, block.vars, params)
    except (NotQuadratic, KeyError):
        cons = None
    g_full = block.objective is None or not (_atoms(block.objective) & DOMAIN_RESTRICTED_ATOMS)
    return SharedAnalysis(block.name, closed, quad, cons, not block.constraints and g_full)
