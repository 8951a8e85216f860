"""The IR: what a checked spec means. Canonical, resolved, families expanded, shapes known.

The canonical distributed problem is

    minimize   sum_i f_i(x_i) + sum_s g_s(z_s)
    subject to x_i in C_i                                  (local constraints)
               x_i[var] == z_s[shared_var]                 (consensus links, equaliser limits)
               sum_t (B_t x_{i(t)} + b_t)  (<= | >= | ==) c  (coupling limits, sharing)

where x_i is the *stacked* variable vector of object i: its vars flattened in C (row-major) order and
concatenated in declaration order. Every objective is stored in minimise form (a `maximize`
objective is negated here; ``sense`` keeps what the user wrote for reporting).

The IR is the single source for the solver and every backend. It is immutable; arrays inside are
read-only numpy arrays. ``to_dict``/``from_dict`` give a JSON-able form (arrays inline as lists
with dtype and shape) so generated packages can ship a plan without the spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

Shape = tuple[int, ...]


def frozen_array(value: Any, dtype: str = "float64") -> np.ndarray:
    arr = np.array(value, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


# ---------------------------------------------------------------------------------------------
# Expressions (resolved): every node knows its shape.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class IRConst:
    value: np.ndarray  # float64 (or int64/bool for int/bool params used in expressions)
    shape: Shape


@dataclass(frozen=True, eq=False)
class IRParamRef:
    """A param of the enclosing object (value in ``IRObject.params``)."""

    name: str
    shape: Shape


@dataclass(frozen=True, eq=False)
class IRVarRef:
    """A variable of the enclosing object (or shared block)."""

    name: str
    shape: Shape


@dataclass(frozen=True, eq=False)
class IRCall:
    """An atom from the language's atom table, e.g. ``sum_squares``, ``norm1``, ``quad_form``.

    ``args`` are expressions; ``options`` holds constant keyword data such as huber's M or
    sum's axis (both as plain Python values).
    """

    atom: str
    args: tuple[IRExpr, ...]
    shape: Shape
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, eq=False)
class IRBinary:
    op: str  # "+", "-", "*" (scalar or elementwise/broadcast), "/" (by a constant), "@"
    left: IRExpr
    right: IRExpr
    shape: Shape


@dataclass(frozen=True, eq=False)
class IRNeg:
    operand: IRExpr
    shape: Shape


@dataclass(frozen=True, eq=False)
class IRIndex:
    """Basic numpy indexing; ``key`` items are ints or ``(start, stop, step)`` triples."""

    base: IRExpr
    key: tuple[int | tuple[int, int, int], ...]
    shape: Shape


@dataclass(frozen=True, eq=False)
class IRTranspose:
    operand: IRExpr
    shape: Shape


@dataclass(frozen=True, eq=False)
class IRStack:
    """An array literal with non-constant elements: ``[x[0], 2 * y]`` (stacks along a new axis 0)."""

    elements: tuple[IRExpr, ...]
    shape: Shape


IRExpr = Union[IRConst, IRParamRef, IRVarRef, IRCall, IRBinary, IRNeg, IRIndex, IRTranspose, IRStack]


# ---------------------------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class IRParam:
    name: str
    dtype: str  # "float" | "int" | "bool"
    shape: Shape
    value: np.ndarray


@dataclass(frozen=True)
class IRVar:
    name: str
    shape: Shape
    offset: int  # start of this var in the object's stacked vector

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # pure Python: called per var per iteration by the solver


@dataclass(frozen=True, eq=False)
class IRConstraint:
    lhs: IRExpr
    op: str  # "<=" | ">=" | "=="
    rhs: IRExpr


@dataclass(frozen=True, eq=False)
class IRExternal:
    """An objective computed by a framework adapter: ``adapter`` (the installed contract's
    ``adapter_version``, the spec's ``requirement``) evaluates ``reference`` (``module:function``,
    resolved in ``search_path`` first) on ``data`` (arrays read from ``data_path`` by the checker).
    ``convex``/``convexity``: who vouched for convexity (a non-convex loss makes ADMM a heuristic)."""

    adapter: str
    adapter_version: str
    requirement: str
    reference: str
    data_path: str
    data: tuple[tuple[str, np.ndarray], ...]
    search_path: str
    convex: bool
    convexity: str
    init: tuple[tuple[str, np.ndarray], ...] = ()  # the vars' starting point by name (empty: zero)


@dataclass(frozen=True, eq=False)
class IRObject:
    """One LocalProblem (a family member is one object, named ``site[3]``)."""

    name: str
    family: str | None
    index: int | None
    platform: str | None
    adapter: str | None
    functors: tuple[str, ...]  # functors applied to its params, in order
    params: tuple[IRParam, ...]
    vars: tuple[IRVar, ...]
    sense: str  # what the user wrote: "minimize" | "maximize"
    objective: IRExpr  # scalar, minimise form (the constant 0 when ``external`` computes it)
    constraints: tuple[IRConstraint, ...]
    external: IRExternal | None = None  # a loss a framework adapter computes (the whole objective)
    #: the DID that owns it (`owner "did:key:..."`; a family's members share their family's), or None
    owner: str | None = None

    @property
    def n(self) -> int:
        """Length of the stacked variable vector."""
        return sum(v.size for v in self.vars)

    def var(self, name: str) -> IRVar:
        for v in self.vars:
            if v.name == name:
                return v
        raise KeyError(name)

    def param(self, name: str) -> IRParam:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True, eq=False)
class IRShared:
    """A SharedVariables block: consensus targets z, constant params, optional global term g(z)."""

    name: str
    params: tuple[IRParam, ...]
    vars: tuple[IRVar, ...]
    objective: IRExpr | None  # minimise form, over this block's vars
    constraints: tuple[IRConstraint, ...]

    @property
    def n(self) -> int:
        return sum(v.size for v in self.vars)

    def var(self, name: str) -> IRVar:
        for v in self.vars:
            if v.name == name:
                return v
        raise KeyError(name)

    def param(self, name: str) -> IRParam:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True)
class IRSchemaField:
    name: str
    dtype: str  # "float" | "int" | "bool"
    shape: Shape
    default: Any = None  # nested Python list / scalar, or None when the field is required


@dataclass(frozen=True)
class IRSchema:
    name: str
    version: int
    fields: tuple[IRSchemaField, ...]

    @property
    def key(self) -> str:
        return f"{self.name}.v{self.version}"


@dataclass(frozen=True, eq=False)
class IRMorphism:
    name: str  # family members: "s_usage[3]"
    source: str  # object name
    target: str  # shared block name
    schema: str
    version: int
    fields: tuple[tuple[str, IRExpr], ...]  # field -> expression over the source's vars and params


@dataclass(frozen=True, eq=False)
class IRConsensus:
    """Equaliser limit member: ``object.var == shared.shared_var`` (whole variables, equal shapes)."""

    limit: str
    object: str
    var: str
    shared: str
    shared_var: str
    shape: Shape


@dataclass(frozen=True, eq=False)
class IRCouplingTerm:
    """One morphism field's contribution ``B @ x_obj + b`` (x_obj: the object's stacked vector)."""

    morphism: str
    object: str
    field: str
    expr: IRExpr  # affine in the object's vars
    B: np.ndarray  # (m, object.n)
    b: np.ndarray  # (m,)


@dataclass(frozen=True, eq=False)
class IRCoupling:
    """Sharing limit: ``sum(terms) <sense> rhs`` elementwise, over a flattened length-m vector.

    ``name`` is the coupling's identity, unique in the plan (``validate_ir`` enforces it): the
    Limit's name (``lim`` or a family member's ``lim[2]``), ``#``, and the constraint's position in
    the Limit from 0, e.g. ``capacity_limit#0``. Every consumer (solver rows, warm-start keys, the
    native coordinators) keys couplings by it; ``limit`` is the Limit it came from, for display.
    """

    name: str
    shared: str
    sense: str  # "<=" | ">=" | "=="
    rhs: np.ndarray  # (m,)
    shape: Shape  # the field's declared shape (m = prod(shape))
    terms: tuple[IRCouplingTerm, ...]
    limit: str = ""
    #: the right side as an expression over the shared block's params (``rhs`` is its value,
    #: broadcast to the coupling's size); None for plans built without one
    rhs_expr: IRExpr | None = None


@dataclass(frozen=True)
class IRFunctor:
    name: str
    source: str
    target: str
    rules: tuple[tuple[str, str], ...]  # (output param, source text of the rule)


@dataclass(frozen=True)
class IRColimit:
    name: str
    shared: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class IRDelta:
    """A PlanDelta, lowered to the whole plan it yields (already checked)."""

    name: str
    ops: tuple[str, ...]  # human-readable summary of each op, e.g. "add LocalProblem tenant_d"
    result: IRPlan


@dataclass(frozen=True, eq=False)
class IRPlan:
    name: str  # the spec's stem, e.g. "gpu_fleet"
    source: str  # the spec's file name as given (relative, no absolute paths)
    spec_hash: str  # sha256 hex over the spec and everything it imports and loads
    schemas: tuple[IRSchema, ...]
    shared: tuple[IRShared, ...]
    objects: tuple[IRObject, ...]
    morphisms: tuple[IRMorphism, ...]
    consensus: tuple[IRConsensus, ...]
    couplings: tuple[IRCoupling, ...]
    functors: tuple[IRFunctor, ...]
    colimit: IRColimit | None
    deltas: tuple[IRDelta, ...] = field(default=())

    def object(self, name: str) -> IRObject:
        for o in self.objects:
            if o.name == name:
                return o
        raise KeyError(name)

    def shared_block(self, name: str) -> IRShared:
        for s in self.shared:
            if s.name == name:
                return s
        raise KeyError(name)

    def schema(self, name: str, version: int) -> IRSchema:
        for s in self.schemas:
            if s.name == name and s.version == version:
                return s
        raise KeyError(f"{name} v{version}")

    def delta(self, name: str) -> IRDelta:
        for d in self.deltas:
            if d.name == name:
                return d
        raise KeyError(name)
