"""``analyze_ir``: what the solver and the backends need to know about a plan, computed once.

Pure and read-only: it takes a validated :class:`IRPlan` and returns a :class:`PlanAnalysis`;
nothing downstream re-derives these facts (the solver's workers and shared proxes, the native
backends and the local-solver report all read them from here).

Per object:

* ``objective``: its exact quadratic form ``1/2 x'Px + q'x + r`` over the stacked vector, when it
  has one (built only from affine terms, ``sum_squares``/``square``/``sum(square(.))`` of affine
  expressions, ``quad_form`` with a constant matrix, sums, negations and constant scalings);
* ``constraints``: ``A_eq x == b_eq`` and ``A_in x <= b_in`` when every constraint is affine, with
  the inequality rows that touch one coordinate also read off as bounds ``lo <= x <= hi``;
* ``solver_class``: how its x-update can be solved (:data:`SOLVER_CLASSES`), with the reason.

Per shared block: the closed form of its z-update (``c * sum_squares(v)`` and ``c * norm1(v)``
terms, ``c >= 0``, no constraints), its quadratic form and affine constraints when it has them,
and whether z ranges over all of R^n (no constraints, g finite everywhere).

Everything is exact: affine maps come from :func:`catopt_dsl.ir.affine.affine_coefficients`
(node-by-node linear algebra, no finite differences). The analysis of a plan is cached by the
plan's identity, so every consumer of one plan shares one analysis.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from catopt_dsl.check.atoms import ATOMS
from catopt_dsl.ir.affine import affine_coefficients
from catopt_dsl.ir.evaluate import evaluate
from catopt_dsl.ir.model import (
    IRBinary,
    IRCall,
    IRConst,
    IRConstraint,
    IRExpr,
    IRNeg,
    IRObject,
    IRParamRef,
    IRPlan,
    IRShared,
    IRVar,
    IRVarRef,
)

__all__ = [
    "DOMAIN_RESTRICTED_ATOMS",
    "SOLVER_CLASSES",
    "LinearConstraints",
    "NotQuadratic",
    "ObjectAnalysis",
    "PlanAnalysis",
    "QuadraticForm",
    "SharedAnalysis",
    "analyze_ir",
    "analyze_object",
    "analyze_shared",
    "linear_constraints",
    "quadratic_form",
]

#: x-update classes, from the cheapest to the most general
SOLVER_CLASSES: tuple[str, ...] = (
    "closed_form_qp",  # quadratic objective, linear equalities: one linear map per rho
    "box_qp",  # quadratic objective, coordinate bounds only
    "qp",  # quadratic objective, general linear inequalities
    "general",  # anything else: CVXPY
)

#: atoms whose domain is not all of R^n (the atom table's ``domain``): an objective using one on a
#: variable may keep x from going everywhere even without constraints saying so
DOMAIN_RESTRICTED_ATOMS: frozenset[str] = frozenset(n for n, spec in ATOMS.items() if spec.domain != "all")


class NotQuadratic(ValueError):
    """The expression (or constraint) is not of the required affine / quadratic form."""


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
    name: str
    objective: QuadraticForm | None
    constraints: LinearConstraints | None
    full_domain: bool  # the objective is finite everywhere
    solver_class: str
    reason: str


@dataclass(frozen=True, eq=False)
class SharedAnalysis:
    name: str
    #: var -> (atom, coefficient) of a closed-form z-update, or None when there is none
    closed: Mapping[str, tuple[str, float]] | None
    objective: QuadraticForm | None
    constraints: LinearConstraints | None
    full_domain: bool  # no constraints and g finite everywhere


@dataclass(eq=False)
class PlanAnalysis:
    """The analysis of one plan; objects and shared blocks are analysed on first request."""

    plan: IRPlan
    _objects: dict[str, ObjectAnalysis] = field(default_factory=dict)
    _shared: dict[str, SharedAnalysis] = field(default_factory=dict)

    def object(self, name: str) -> ObjectAnalysis:
        found = self._objects.get(name)
        if found is None:
            found = self._objects[name] = _analyse_object(self.plan.object(name))
        return found

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


_CACHE: "weakref.WeakKeyDictionary[IRPlan, PlanAnalysis]" = weakref.WeakKeyDictionary()


def analyze_ir(plan: IRPlan) -> PlanAnalysis:
    """The analysis of ``plan`` (one per plan object: later calls return the same analysis)."""
    found = _CACHE.get(plan)
    if found is None:
        found = _CACHE[plan] = PlanAnalysis(plan)
    return found


# ---------------------------------------------------------------------------------------------
# Forms
# ---------------------------------------------------------------------------------------------


def analyze_object(obj: IRObject) -> ObjectAnalysis:
    """One object's analysis (for a worker built without its plan; :func:`analyze_ir` caches)."""
    return _analyse_object(obj)


def analyze_shared(block: IRShared) -> SharedAnalysis:
    """One shared block's analysis (for a prox built without its plan)."""
    return _analyse_shared(block)


def _params(values: tuple) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(p.value, dtype=np.float64) for p in values}


def _affine(expr: IRExpr, vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    try:
        return affine_coefficients(expr, vars, params)
    except ValueError as exc:
        raise NotQuadratic(str(exc)) from None


def _scalar_const(expr: IRExpr, params: Mapping[str, np.ndarray]) -> float | None:
    if tuple(expr.shape) != () or _has_var(expr):
        return None
    return float(np.asarray(evaluate(expr, {}, params)))


def _has_var(expr: IRExpr) -> bool:
    if isinstance(expr, IRVarRef):
        return True
    if isinstance(expr, (IRConst, IRParamRef)):
        return False
    return any(_has_var(child) for child in _children(expr))


def _children(expr: IRExpr) -> tuple[IRExpr, ...]:
    if isinstance(expr, IRBinary):
        return (expr.left, expr.right)
    if isinstance(expr, IRCall):
        return tuple(expr.args)
    elements = getattr(expr, "elements", None)
    if elements is not None:
        return tuple(elements)
    for attr in ("operand", "base"):
        child = getattr(expr, attr, None)
        if child is not None:
            return (child,)
    return ()


def _atoms(expr: IRExpr) -> set[str]:
    out = {expr.atom} if isinstance(expr, IRCall) else set()
    for child in _children(expr):
        out |= _atoms(child)
    return out


def _sum_squares(A: np.ndarray, c: np.ndarray) -> QuadraticForm:
    with np.errstate(over="ignore", invalid="ignore"):  # huge data: inf, reported downstream
        return QuadraticForm(2.0 * A.T @ A, 2.0 * A.T @ c, float(c @ c))


def quadratic_form(expr: IRExpr, vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]) -> QuadraticForm:
    """The exact ``(P, q, r)`` of a scalar quadratic expression; :class:`NotQuadratic` otherwise.

    Convexity is not checked here (see :attr:`QuadraticForm.convex`).
    """
    n = max((v.offset + v.size for v in vars), default=0)
    if tuple(expr.shape) != ():
        raise NotQuadratic("the objective is not a scalar")
    if not _is_nonlinear(expr):
        A, c = _affine(expr, vars, params)
        return QuadraticForm(np.zeros((n, n)), A.reshape(-1).copy() if A.size else np.zeros(n), float(c.reshape(-1)[0]))
    if isinstance(expr, IRNeg):
        return quadratic_form(expr.operand, vars, params).scale(-1.0)
    if isinstance(expr, IRBinary):
        if expr.op in ("+", "-"):
            left = quadratic_form(expr.left, vars, params)
            right = quadratic_form(expr.right, vars, params)
            return left + (right if expr.op == "+" else right.scale(-1.0))
        if expr.op == "*":
            for k_expr, q_expr in ((expr.left, expr.right), (expr.right, expr.left)):
                k = _scalar_const(k_expr, params)
                if k is not None:
                    return quadratic_form(q_expr, vars, params).scale(k)
            raise NotQuadratic("product of two non-constant expressions")
        if expr.op == "/":
            k = _scalar_const(expr.right, params)
            if k is None or k == 0.0:
                raise NotQuadratic("division by a non-constant")
            return quadratic_form(expr.left, vars, params).scale(1.0 / k)
        raise NotQuadratic(f"operator `{expr.op}`")
    if isinstance(expr, IRCall):
        atom, options = expr.atom, dict(expr.options)
        if atom == "sum_squares" or (atom == "square" and tuple(expr.args[0].shape) == ()):
            return _sum_squares(*_affine(expr.args[0], vars, params))
        if atom == "sum" and options.get("axis") is None:
            inner = expr.args[0]
            if isinstance(inner, IRCall) and inner.atom == "square":
                return _sum_squares(*_affine(inner.args[0], vars, params))
            raise NotQuadratic("sum of a non-affine, non-square expression")
        if atom == "quad_form":
            A, c = _affine(expr.args[0], vars, params)
            if _has_var(expr.args[1]):
                raise NotQuadratic("quad_form with a variable matrix")
            M = np.asarray(evaluate(expr.args[1], {}, params), dtype=np.float64)
            M = 0.5 * (M + M.T)
            return QuadraticForm(2.0 * A.T @ M @ A, 2.0 * A.T @ (M @ c), float(c @ M @ c))
        raise NotQuadratic(f"atom `{atom}` is not quadratic")
    raise NotQuadratic(f"node {type(expr).__name__}")


def _is_nonlinear(expr: IRExpr) -> bool:
    """Whether the tree has a part that is not affine (cheap pre-check before affine extraction)."""
    if isinstance(expr, IRCall):
        if expr.atom not in ("sum", "mean", "multiply", "dot", "transpose") and _has_var(expr):
            return True
    if isinstance(expr, IRBinary) and expr.op in ("*", "@", "/") and _has_var(expr.left) and _has_var(expr.right):
        return True
    return any(_is_nonlinear(child) for child in _children(expr))


def linear_constraints(
    constraints: tuple[IRConstraint, ...], vars: tuple[IRVar, ...], params: Mapping[str, np.ndarray]
) -> LinearConstraints:
    """The constraints as :class:`LinearConstraints`; :class:`NotQuadratic` if one is not affine."""
    n = max((v.offset + v.size for v in vars), default=0)
    eq_A: list[np.ndarray] = [np.zeros((0, n))]
    eq_b: list[np.ndarray] = [np.zeros(0)]
    in_A: list[np.ndarray] = [np.zeros((0, n))]
    in_b: list[np.ndarray] = [np.zeros(0)]
    for con in constraints:
        Al, cl = _affine(con.lhs, vars, params)
        Ar, cr = _affine(con.rhs, vars, params)
        m = max(cl.size, cr.size)
        if cl.size != m:
            Al, cl = np.repeat(Al, m, axis=0), np.repeat(cl, m)
        if cr.size != m:
            Ar, cr = np.repeat(Ar, m, axis=0), np.repeat(cr, m)
        D, e = Al - Ar, cr - cl  # D x (op) e
        if con.op == "==":
            eq_A.append(D)
            eq_b.append(e)
        elif con.op == "<=":
            in_A.append(D)
            in_b.append(e)
        else:
            in_A.append(-D)
            in_b.append(-e)
    A_in, b_in = np.vstack(in_A), np.concatenate(in_b)
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    general = np.zeros(A_in.shape[0], dtype=bool)
    for k, (row, bound) in enumerate(zip(A_in, b_in)):
        nz = np.flatnonzero(row)
        if nz.size != 1:
            general[k] = nz.size > 0 or bound < 0  # an empty row that fails stays "general"
            continue
        j, coef = int(nz[0]), float(row[nz[0]])
        if coef > 0:
            hi[j] = min(hi[j], bound / coef)
        else:
            lo[j] = max(lo[j], bound / coef)
    return LinearConstraints(np.vstack(eq_A), np.concatenate(eq_b), A_in, b_in, lo, hi, general)


# ---------------------------------------------------------------------------------------------
# Objects and shared blocks
# ---------------------------------------------------------------------------------------------


def _analyse_object(obj: IRObject) -> ObjectAnalysis:
    params = _params(obj.params)
    full_domain = not (_atoms(obj.objective) & DOMAIN_RESTRICTED_ATOMS)
    try:
        quad: QuadraticForm | None = quadratic_form(obj.objective, obj.vars, params)
    except (NotQuadratic, KeyError):
        quad = None
    try:
        cons: LinearConstraints | None = linear_constraints(obj.constraints, obj.vars, params)
    except (NotQuadratic, KeyError):
        cons = None
    if quad is None:
        cls, why = "general", "the objective is not quadratic"
    elif not quad.convex:
        cls, why = "general", "the quadratic objective is not convex (CVXPY decides)"
    elif cons is None:
        cls, why = "general", "a constraint is not affine"
    elif not cons.A_in.shape[0]:
        cls, why = "closed_form_qp", "quadratic objective, linear equalities only"
    elif cons.only_bounds:
        cls, why = "box_qp", "quadratic objective, coordinate bounds only"
    else:
        cls, why = "qp", "quadratic objective, linear inequalities"
    return ObjectAnalysis(obj.name, quad, cons, full_domain, cls, why)


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
