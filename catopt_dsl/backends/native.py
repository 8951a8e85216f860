"""The native model: what the Rust and the C++ backends generate, decided once for both.

Both native targets emit the same things -- one type per schema version with its record codec, one
typed handle per LocalProblem unit with its params embedded bit-exactly, one ``PlanSpec`` per plan
the spec yields (the coordinator's structure), generated tests -- next to a copy of the static
runtime (``native/<target>/``, see :func:`runtime_sources`). This module builds that model:

* the plan-structure model (:func:`native_plan`, :func:`native_units`) in the row order of
  ``catopt_dsl.solver.layout``, and the data blobs (:class:`Blobs`) that arrays over
  :data:`INLINE_MAX` elements become;
* the view model (:func:`build_package`): frozen dataclasses of strings that the templates only loop
  over, with every identifier from :class:`~catopt_dsl.backends.naming.Namer` and every literal
  written by the target's :class:`Dialect`.

A :class:`Dialect` is all that differs between Rust and C++ at this level: how a string, a float, an
int, a fixed list, a growable vector, an optional string, a type and a runtime item are written.
``rust.py`` and ``cpp.py`` each define one, plus their file layout and templates.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from catopt_dsl.backends.common import (
    all_schemas,
    catopt_version,
    header_lines,
    jinja_env,
    plan_tree,
    shape_text,
    source_name,
)
from catopt_dsl.backends.escape import inline, safe_comment
from catopt_dsl.backends.naming import Namer, Target, snake_case
from catopt_dsl.ir.analysis import analyze_ir
from catopt_dsl.ir.model import IRObject, IRPlan, IRSchema, IRSchemaField, IRShared
from catopt_dsl.resources import native_dir


def c_api_prefix(plan: IRPlan) -> str:
    """``catopt_<stem>``: the C++ namespace and the prefix of the C API's functions, one for both
    languages so that ``runtime.native_backend`` loads the C++ library and the Rust ``cdylib`` the
    same way. Never a keyword, never a double underscore, never a leading digit."""
    return "catopt_" + _C_NAMER.package_name(plan.name)


_C_NAMER = Namer("cpp")

#: Arrays up to this many elements are written inline (readable output); larger ones become blobs.
INLINE_MAX = 8

#: schema / param dtype -> the element kind of the wire format and of the native types
KIND = {"float": "f64", "int": "i64", "bool": "bool"}
#: the runtimes' names (the same in both languages) for a shared var's closed-form term and a
#: coupling's sense
TERM_VARIANT = {"free": "Free", "sum_squares": "SumSquares", "norm1": "Norm1"}
SENSE_VARIANT = {"<=": "Le", ">=": "Ge", "==": "Eq"}

# ---------------------------------------------------------------------------------------------
# Data blobs
# ---------------------------------------------------------------------------------------------


def f64_bits(value: float) -> int:
    """The IEEE-754 bit pattern of ``value`` (NaN payloads and -0.0 kept)."""
    return int(struct.unpack("<Q", struct.pack("<d", float(value)))[0])


@dataclass(frozen=True)
class Blob:
    """One embedded data array: ``kind`` is ``f64`` / ``i64`` / ``bool``; ``data`` little-endian."""

    index: int
    kind: str
    count: int
    data: bytes

    @property
    def file_name(self) -> str:
        return f"blob_{self.index:04d}.bin"

    @property
    def symbol(self) -> str:
        return f"BLOB_{self.index:04d}"


def le_bytes(values: np.ndarray, kind: str) -> bytes:
    """``values`` flattened to little-endian bytes of ``kind`` (bools one byte each, 0 or 1)."""
    flat = np.asarray(values).reshape(-1)
    if kind == "f64":
        return flat.astype("<f8").tobytes()
    if kind == "i64":
        return flat.astype("<i8").tobytes()
    return flat.astype(np.bool_).astype("u1").tobytes()


class Blobs:
    """Deduplicating table of data blobs, numbered in order of first use (deterministic)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, bytes], Blob] = {}

    def add(self, values: np.ndarray, kind: str) -> Blob:
        data = le_bytes(values, kind)
        key = (kind, data)
        blob = self._by_key.get(key)
        if blob is None:
            blob = Blob(len(self._by_key), kind, int(np.asarray(values).size), data)
            self._by_key[key] = blob
        return blob

    @property
    def all(self) -> list[Blob]:
        return sorted(self._by_key.values(), key=lambda b: b.index)


# ---------------------------------------------------------------------------------------------
# Plan structure (the coordinator's view of one plan)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NativeVar:
    name: str
    offset: int
    size: int
    term: str  # "free" | "sum_squares" | "norm1"
    coef: float


@dataclass(frozen=True, eq=False)
class NativeShared:
    name: str
    n: int
    vars: tuple[NativeVar, ...]
    closed: bool


@dataclass(frozen=True, eq=False)
class NativeBlock:
    kind: str  # "consensus" | "coupling"
    shared: int = 0
    var: int = 0
    x_offset: int = 0
    size: int = 0
    coupling: int = 0
    B: np.ndarray | None = None  # (rows, n)
    b: np.ndarray | None = None  # (rows,)

    @property
    def rows(self) -> int:
        return self.size if self.kind == "consensus" else int(np.asarray(self.b).size)


@dataclass(frozen=True, eq=False)
class NativeObject:
    name: str
    n: int
    blocks: tuple[NativeBlock, ...]


@dataclass(frozen=True, eq=False)
class NativeCoupling:
    name: str
    sense: str
    rhs: np.ndarray


@dataclass(frozen=True, eq=False)
class NativePlan:
    """What a native coordinator needs for one plan (row blocks in ``solver/layout.py`` order)."""

    path: tuple[str, ...]
    plan: IRPlan
    shared: tuple[NativeShared, ...]
    objects: tuple[NativeObject, ...]
    couplings: tuple[NativeCoupling, ...]

    @property
    def closed_form(self) -> bool:
        return all(s.closed for s in self.shared)

    @property
    def unit_feasible(self) -> bool:
        """Whether the plan has a point for the generated tests' local solvers (unconstrained
        quadratics, closed-form shared steps without constraints): the consensus equalities and the
        coupling rows, over free x and z, form an LP feasibility problem that decides it. The tests
        expect `optimal` when it is feasible and never `optimal` when it is not."""
        return _linear_rows_feasible(self)


# An LP larger than this is not solved at generation time; such plans are assumed feasible (the
# generated test then expects `optimal`, as before this check existed).
_FEASIBILITY_MAX_VARS = 200_000

_Row = tuple[list[int], list[float], float]


def _linear_rows_feasible(npl: NativePlan) -> bool:
    import scipy.sparse as sp
    from scipy.optimize import linprog

    x_at: list[int] = []
    total = 0
    for o in npl.objects:
        x_at.append(total)
        total += o.n
    z_at: list[int] = []
    for s in npl.shared:
        z_at.append(total)
        total += s.n
    if total == 0 or total > _FEASIBILITY_MAX_VARS:
        return True
    eq_rows: list[_Row] = []
    ub_rows: list[_Row] = []
    coupling_rows: dict[int, list[_Row]] = {}
    for o, x0 in zip(npl.objects, x_at):
        for blk in o.blocks:
            if blk.kind == "consensus":
                z0 = z_at[blk.shared] + npl.shared[blk.shared].vars[blk.var].offset
                for j in range(blk.size):
                    eq_rows.append(([x0 + blk.x_offset + j, z0 + j], [1.0, -1.0], 0.0))
                continue
            B = np.asarray(blk.B, dtype=np.float64)
            b = np.asarray(blk.b, dtype=np.float64).reshape(-1)
            acc = coupling_rows.setdefault(blk.coupling, [([], [], 0.0) for _ in range(b.size)])
            for r in range(b.size):
                cols, vals, const = acc[r]
                nz = np.flatnonzero(B[r])
                # in place: a row summing every object's terms grew by copying (quadratic)
                cols.extend(x0 + int(k) for k in nz)
                vals.extend(float(B[r, k]) for k in nz)
                acc[r] = (cols, vals, const + float(b[r]))
    for ci, c in enumerate(npl.couplings):
        rows = coupling_rows.get(ci, [([], [], 0.0) for _ in range(c.rhs.size)])
        for r, (cols, vals, const) in enumerate(rows):
            rhs = float(c.rhs.reshape(-1)[r if c.rhs.size > 1 else 0]) - const
            if c.sense == "==":
                eq_rows.append((cols, vals, rhs))
            elif c.sense == "<=":
                ub_rows.append((cols, vals, rhs))
            else:
                ub_rows.append((cols, [-v for v in vals], -rhs))

    def matrix(rows: list[_Row]) -> tuple[Any, Any]:
        if not rows:
            return None, None
        data = [v for _, vals, _ in rows for v in vals]
        ri = [i for i, (cols, _, _) in enumerate(rows) for _ in cols]
        ci = [c for cols, _, _ in rows for c in cols]
        return sp.csr_matrix((data, (ri, ci)), shape=(len(rows), total)), np.array([r for _, _, r in rows])

    A_eq, b_eq = matrix(eq_rows)
    A_ub, b_ub = matrix(ub_rows)
    if A_eq is None and A_ub is None:
        return True
    res = linprog(np.zeros(total), A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=(None, None), method="highs")
    return bool(res.status != 2)  # 2: infeasible; anything else (solved, or a numerical hiccup) counts as feasible


def _closed_terms(plan: IRPlan, block: IRShared) -> dict[str, tuple[str, float]] | None:
    """The block's closed-form g terms per var (from the IR analysis, as the solver reads them)."""
    closed = analyze_ir(plan).shared(block.name).closed
    return None if closed is None else dict(closed)


def native_plan(path: tuple[str, ...], plan: IRPlan) -> NativePlan:
    """The coordinator structure of ``plan`` (same rows as ``catopt_dsl.solver.layout``)."""
    shared: list[NativeShared] = []
    var_index: dict[tuple[str, str], tuple[int, int]] = {}
    for si, blk in enumerate(plan.shared):
        closed = _closed_terms(plan, blk)
        nvars = []
        for vi, v in enumerate(blk.vars):
            atom, coef = (closed or {}).get(v.name, ("free", 0.0))
            nvars.append(NativeVar(v.name, v.offset, v.size, atom, float(coef)))
            var_index[(blk.name, v.name)] = (si, vi)
        shared.append(NativeShared(blk.name, blk.n, tuple(nvars), closed is not None))
    coupling_index = {c.name: i for i, c in enumerate(plan.couplings)}
    # Each object's links and coupling terms, in plan order, found once: scanning every link and
    # term per object was quadratic (most of emitting 10,000 objects).
    links_of: dict[str, list[Any]] = {}
    for link in plan.consensus:
        links_of.setdefault(link.object, []).append(link)
    terms_of: dict[str, list[tuple[int, Any]]] = {}
    for coupling in plan.couplings:
        for term in coupling.terms:
            terms_of.setdefault(term.object, []).append((coupling_index[coupling.name], term))
    objects: list[NativeObject] = []
    for obj in plan.objects:
        blocks: list[NativeBlock] = []
        for link in links_of.get(obj.name, ()):
            var = obj.var(link.var)
            si, vi = var_index[(link.shared, link.shared_var)]
            blocks.append(NativeBlock("consensus", shared=si, var=vi, x_offset=var.offset, size=var.size))
        for ci, term in terms_of.get(obj.name, ()):
            B = np.asarray(term.B, dtype=np.float64).reshape(-1, obj.n)
            b = np.asarray(term.b, dtype=np.float64).reshape(-1)
            blocks.append(NativeBlock("coupling", coupling=ci, B=B, b=b))
        objects.append(NativeObject(obj.name, obj.n, tuple(blocks)))
    couplings = tuple(
        NativeCoupling(c.name, c.sense, np.asarray(c.rhs, dtype=np.float64).reshape(-1)) for c in plan.couplings
    )
    return NativePlan(path, plan, tuple(shared), tuple(objects), couplings)


#: the IR analysis' solver classes whose x-update is a QP: the native runtimes solve these
QP_CLASSES = ("closed_form_qp", "box_qp", "qp")


@dataclass(frozen=True, eq=False)
class NativeQp:
    """One object's local QP: ``1/2 x'Px + q'x + r`` subject to ``l <= A x <= u`` (equalities
    ``l == u``, then one row per bounded coordinate, then the general inequalities)."""

    P: np.ndarray
    q: np.ndarray
    r: float
    A: np.ndarray
    l: np.ndarray
    u: np.ndarray


def local_qp(plan: IRPlan, obj: IRObject) -> NativeQp | None:
    """The QP data of ``obj`` from the IR analysis, or None when its x-update is not a QP (it
    then needs a user LocalSolver)."""
    a = analyze_ir(plan).object(obj.name)
    quad, cons = a.objective, a.constraints
    if a.solver_class not in QP_CLASSES or quad is None or cons is None:
        return None
    n = obj.n
    rows = [np.asarray(cons.A_eq, dtype=np.float64).reshape(-1, n)]
    lows = [np.asarray(cons.b_eq, dtype=np.float64).reshape(-1)]
    ups = [lows[0]]
    lo, hi = np.asarray(cons.lo, dtype=np.float64), np.asarray(cons.hi, dtype=np.float64)
    boxed = np.flatnonzero(np.isfinite(lo) | np.isfinite(hi))
    unit = np.zeros((boxed.size, n))
    unit[np.arange(boxed.size), boxed] = 1.0
    rows.append(unit)
    lows.append(lo[boxed])
    ups.append(hi[boxed])
    general = np.asarray(cons.general, dtype=bool)
    A_in = np.asarray(cons.A_in, dtype=np.float64).reshape(-1, n)
    rows.append(A_in[general])
    lows.append(np.full(int(general.sum()), -np.inf))
    ups.append(np.asarray(cons.b_in, dtype=np.float64).reshape(-1)[general])
    return NativeQp(
        np.asarray(quad.P, dtype=np.float64).reshape(n, n),
        np.asarray(quad.q, dtype=np.float64).reshape(n),
        float(quad.r),
        np.concatenate(rows, axis=0),
        np.concatenate(lows),
        np.concatenate(ups),
    )


def natural_key(name: str) -> tuple[Any, ...]:
    """``site[2]`` before ``site[10]`` (the order ``solve --json`` lists names in)."""
    import re

    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name))


def needs_local_solver(plan: IRPlan) -> list[str]:
    """The objects (of the plan and its PlanDelta results) whose x-update is not a QP: the
    native code needs a user LocalSolver for each."""
    out: list[str] = []
    for node in plan_tree(plan):
        for o in node.plan.objects:
            if o.name not in out and local_qp(node.plan, o) is None:
                out.append(o.name)
    return out


@dataclass(frozen=True, eq=False)
class NativeUnit:
    """A LocalProblem unit (plain object or family) with every member's data."""

    name: str
    family: bool
    sample: IRObject
    members: tuple[IRObject, ...]  # plain: one; family: by index


def native_units(plan: IRPlan) -> list[NativeUnit]:
    """Units over the plan and its delta results; each member's data from where it first appears."""
    members: dict[str, dict[str, IRObject]] = {}
    for node in plan_tree(plan):
        for o in node.plan.objects:
            unit = o.family if o.family is not None else o.name
            members.setdefault(unit, {}).setdefault(o.name, o)
    out = []
    for unit, objs in members.items():
        ordered = sorted(objs.values(), key=lambda o: (o.index if o.index is not None else 0))
        sample = ordered[0]
        out.append(NativeUnit(unit, sample.family is not None, sample, tuple(ordered)))
    return out


def absent_index(indices: Sequence[int]) -> int:
    """An int64 that is not a member index, for the generated "unknown index" test: just below the
    smallest member, or (when the family starts at i64::MIN) the first gap above it."""
    present = set(indices)
    lo = min(present) if present else 0
    if lo > -(2**63):
        return lo - 1
    k = lo
    while k in present:
        k += 1
    return k


def sample_values(field: IRSchemaField, seed: int) -> list[Any]:
    """Deterministic test values for one schema field (flat, row-major)."""
    size = int(np.prod(field.shape, dtype=np.int64)) if field.shape else 1
    out: list[Any] = []
    for k in range(size):
        j = seed * 31 + k
        if field.dtype == "float":
            out.append((j % 17) * 0.375 - 2.5)
        elif field.dtype == "int":
            out.append((j % 23) * 1_000_003 - 11_000_000)
        else:
            out.append(j % 3 == 0)
    return out


def flat_default(field: IRSchemaField) -> list[Any]:
    """A field's default value flattened to the schema's shape (the wire codec's coercion)."""
    kind = {"float": np.float64, "int": np.int64, "bool": np.bool_}[field.dtype]
    arr: np.ndarray = np.asarray(field.default, dtype=kind)
    if tuple(arr.shape) != tuple(field.shape):
        arr = np.broadcast_to(arr, field.shape)
    return arr.reshape(-1).tolist()


# ---------------------------------------------------------------------------------------------
# The literal dialect of one native language
# ---------------------------------------------------------------------------------------------


class Dialect(ABC):
    """How one native language writes what the model needs: literals, types, runtime items.

    ``package`` is the crate (Rust) or namespace (C++) the generated code lives in. Every method
    returns source text; none decides *what* is generated (that is :func:`build_package`'s job).
    """

    target: ClassVar[Target]
    #: per scope ("record", "problem"), member names the generated types define themselves, which a
    #: field must not take (escaped with `_` by the namer and checked for collisions)
    reserved_members: ClassVar[Mapping[str, frozenset[str]]] = {}

    def __init__(self, package: str) -> None:
        self.package = package
        self.namer = Namer(self.target)

    # -- literals --------------------------------------------------------------------------------
    @abstractmethod
    def string(self, text: str) -> str:
        """A string literal holding ``text`` exactly (:mod:`catopt_dsl.backends.escape`)."""

    @abstractmethod
    def float_lit(self, value: float) -> str:
        """A double with exactly ``value``'s bits (NaN payloads, -0.0, infinities)."""

    @abstractmethod
    def int_lit(self, value: int) -> str:
        """An int64 literal for any value in range, ``-2**63`` included."""

    def bool_lit(self, value: Any) -> str:
        return "true" if bool(value) else "false"

    def scalar(self, value: Any, kind: str) -> str:
        if kind == "f64":
            return self.float_lit(float(value))
        if kind == "i64":
            return self.int_lit(int(value))
        return self.bool_lit(value)

    @abstractmethod
    def seq(self, items: Sequence[str]) -> str:
        """A fixed list of already-written items (a static slice / a braced initialiser)."""

    @abstractmethod
    def pair(self, first: str, second: str) -> str:
        """A two-element tuple / pair of already-written items."""

    @abstractmethod
    def opt_string(self, text: str | None) -> str:
        """An optional string: absent, or the literal of ``text``."""

    def dims(self, shape: Sequence[int]) -> str:
        return self.seq([str(int(d)) for d in shape])

    @abstractmethod
    def vector(self, items: Sequence[str], kind: str) -> str:
        """A growable vector of ``kind`` holding already-written items (possibly none)."""

    @abstractmethod
    def zeros(self, kind: str, count: int) -> str:
        """A growable vector of ``count`` zeros (``false``) of ``kind``."""

    @abstractmethod
    def blob_vector(self, blob: Blob) -> str:
        """A growable vector holding the data of ``blob`` (embedded next to the code)."""

    def values(self, values: Any, kind: str, blobs: Blobs | None) -> str:
        """A growable vector holding ``values`` bit-exactly: inline when short (or when ``blobs`` is
        None), else as a data blob."""
        flat = np.asarray(values).reshape(-1)
        if flat.size <= INLINE_MAX or blobs is None:
            return self.vector([self.scalar(v, kind) for v in flat.tolist()], kind)
        return self.blob_vector(blobs.add(flat, kind))

    # -- types -----------------------------------------------------------------------------------
    @abstractmethod
    def scalar_type(self, kind: str) -> str: ...

    @abstractmethod
    def vector_type(self, kind: str) -> str: ...

    def value_type(self, kind: str, shape: Sequence[int]) -> str:
        """A value of ``shape``: the scalar type, or a flat row-major vector for an array."""
        return self.scalar_type(kind) if not shape else self.vector_type(kind)

    # -- the runtime's plan structures ----------------------------------------------------------
    @abstractmethod
    def shared_var(self, var: NativeVar) -> str:
        """A ``SharedVarSpec`` value (with its closed-form term)."""

    @abstractmethod
    def consensus(self, block: NativeBlock) -> str:
        """A consensus ``Block`` value."""

    @abstractmethod
    def coupling_term(self, block: NativeBlock, B: str, b: str) -> str:
        """A coupling ``Block`` value with its (already written) ``B`` and ``b`` vectors."""

    @abstractmethod
    def sense(self, sense: str) -> str:
        """The ``Sense`` value of ``<=`` / ``>=`` / ``==``."""

    # -- names -----------------------------------------------------------------------------------
    def field(self, name: str, scope: str) -> str:
        """The identifier of a schema field (``scope="record"``) or a param (``"problem"``)."""
        return self.namer.field_name(name, self.reserved_members.get(scope, frozenset()))


# ---------------------------------------------------------------------------------------------
# View model (read by the templates of both languages)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldView:
    ident: str
    index: int
    type: str  # the member's type: scalar or vector
    vec_type: str  # the vector type of its kind (the record codec reads every field as one)
    kind: str  # f64 | i64 | bool
    scalar: bool
    dims: str
    what: str  # string literal "Schema.vN.field"
    default_expr: str  # "" when required
    init_expr: str  # what a default-constructed record holds: the default, else zeros of the shape
    sample_expr: str
    doc: str


@dataclass(frozen=True)
class SchemaView:
    ident: str
    test_fn: str
    name_lit: str
    version: int
    fields: tuple[FieldView, ...]
    doc: str


@dataclass(frozen=True)
class ParamView:
    ident: str
    name_lit: str
    type: str
    shape: str
    scalar: bool
    size: int
    doc: str


@dataclass(frozen=True)
class MemberView:
    index: str  # an int64 literal
    name_lit: str
    values: tuple[tuple[str, str], ...]  # (param ident, expression)


@dataclass(frozen=True)
class UnitView:
    ident: str
    test_fn: str
    family: bool
    name_lit: str
    platform: str
    adapter: str
    functors: str
    var_shapes: str
    param_shapes: str
    n: int
    doc: str
    params: tuple[ParamView, ...]
    members: tuple[MemberView, ...]
    indices: str
    absent: str  # an int64 literal that is no member's index


@dataclass(frozen=True)
class SharedView:
    name_lit: str
    n: int
    vars: tuple[str, ...]  # SharedVarSpec values
    closed: str  # boolean literal


@dataclass(frozen=True)
class ObjectView:
    name_lit: str
    n: int
    blocks: tuple[str, ...]


@dataclass(frozen=True)
class CouplingView:
    name_lit: str
    sense: str
    rhs: str


@dataclass(frozen=True)
class LocalView:
    """One object's generated x-update: its QP data (``qp``), or none (a user LocalSolver)."""

    name: str  # comment-safe
    qp: bool
    p: str = ""
    q: str = ""
    r: str = ""
    a: str = ""
    l: str = ""
    u: str = ""
    #: the same data as IEEE-754 bit patterns (hex words: P, q, r, A, l, u in order) and the
    #: lengths of P, q, A and l: a static table compiles fast where thousands of initialisers do not
    words: str = ""
    sizes: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass(frozen=True)
class VarView:
    name_lit: str
    offset: int
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ReportView:
    """An object or shared block of the JSON report: its index in the plan and its vars."""

    index: int
    vars: tuple[VarView, ...]


@dataclass(frozen=True)
class PlanView:
    fn: str
    test_fn: str
    name_lit: str
    doc: str
    closed_form: bool
    feasible: bool  # see NativePlan.unit_feasible
    shared: tuple[SharedView, ...]
    objects: tuple[ObjectView, ...]
    couplings: tuple[CouplingView, ...]
    local_fn: str = ""
    report_fn: str = ""
    local: tuple[LocalView, ...] = ()
    needs_solver: tuple[str, ...] = ()  # comment-safe names of the objects that are not QPs
    report_objects: tuple[ReportView, ...] = ()
    report_shared: tuple[ReportView, ...] = ()
    all_qp: bool = False


@dataclass(frozen=True)
class PackageView:
    name: str  # the crate / namespace
    header: tuple[str, ...]
    source_lit: str
    hash_lit: str
    version_lit: str
    schemas: tuple[SchemaView, ...]
    units: tuple[UnitView, ...]
    plans: tuple[PlanView, ...]


def _field_view(d: Dialect, s: IRSchema, index: int, f: IRSchemaField, seed: int) -> FieldView:
    kind = KIND[f.dtype]

    def value(flat: list[Any]) -> str:
        return d.scalar(flat[0], kind) if not f.shape else d.values(np.asarray(flat), kind, None)

    doc = f.dtype if not f.shape else f"{f.dtype} array, shape {shape_text(f.shape)}, row-major"
    if f.default is not None:
        doc += f"; default {np.asarray(f.default).tolist()!r}"
    return FieldView(
        ident=d.field(f.name, "record"),
        index=index,
        type=d.value_type(kind, f.shape),
        vec_type=d.vector_type(kind),
        kind=kind,
        scalar=not f.shape,
        dims=d.dims(f.shape),
        what=d.string(f"{s.name}.v{s.version}.{f.name}"),
        default_expr="" if f.default is None else value(flat_default(f)),
        init_expr=(
            value(flat_default(f)) if f.default is not None
            else d.scalar(0, kind) if not f.shape
            else d.zeros(kind, int(np.prod(f.shape)))
        ),
        sample_expr=value(sample_values(f, seed)),
        doc=safe_comment(f"`{f.name}`: {doc}"),
    )


def _schema_views(d: Dialect, plan: IRPlan) -> tuple[SchemaView, ...]:
    return tuple(
        SchemaView(
            ident=d.namer.schema_type(s.name, s.version),
            test_fn=f"record_{i}_{snake_case(s.name)}_v{s.version}",
            name_lit=d.string(s.name),
            version=s.version,
            fields=tuple(_field_view(d, s, j, f, i + j) for j, f in enumerate(s.fields)),
            doc=safe_comment(f"Schema `{s.name}` v{s.version}: {len(s.fields)} field(s)."),
        )
        for i, s in enumerate(all_schemas(plan))
    )


def _unit_doc(u: NativeUnit) -> str:
    o = u.sample
    where = []
    if o.platform is not None:
        where.append(f"on `{o.platform}`")
    if o.adapter is not None:
        where.append(f"via `{o.adapter}`")
    what = f"LocalProblem family `{u.name}` ({len(u.members)} members)" if u.family else f"LocalProblem `{u.name}`"
    return safe_comment(what + (" " + ", ".join(where) if where else "") + f"; it {o.sense}s its objective.")


def _unit_views(d: Dialect, plan: IRPlan, blobs: Blobs) -> tuple[UnitView, ...]:
    out = []
    for i, u in enumerate(native_units(plan)):
        o = u.sample
        params = tuple(
            ParamView(
                ident=d.field(p.name, "problem"),
                name_lit=d.string(p.name),
                type=d.value_type(KIND[p.dtype], p.shape),
                shape=d.dims(p.shape),
                scalar=not p.shape,
                size=int(np.prod(p.shape, dtype=np.int64)) if p.shape else 1,
                doc=safe_comment(
                    f"`{p.name}`: {p.dtype} "
                    + ("scalar" if not p.shape else f"array, shape {shape_text(p.shape)}, row-major")
                ),
            )
            for p in o.params
        )
        members = []
        for m in u.members:
            by_name = {q.name: q for q in m.params}
            values = []
            for p in o.params:
                q = by_name[p.name]
                kind = KIND[q.dtype]
                expr = d.scalar(np.asarray(q.value).reshape(()).item(), kind) if not q.shape else d.values(q.value, kind, blobs)
                values.append((d.field(p.name, "problem"), expr))
            members.append(MemberView(d.int_lit(m.index or 0), d.string(m.name), tuple(values)))
        out.append(
            UnitView(
                ident=d.namer.type_name(u.name),
                test_fn=f"handle_{i}_{snake_case(u.name)}",
                family=u.family,
                name_lit=d.string(u.name),
                platform=d.opt_string(o.platform),
                adapter=d.opt_string(o.adapter),
                functors=d.seq([d.string(f) for f in o.functors]),
                var_shapes=d.seq([d.pair(d.string(v.name), d.dims(v.shape)) for v in o.vars]),
                param_shapes=d.seq([d.pair(p.name_lit, p.shape) for p in params]),
                n=o.n,
                doc=_unit_doc(u),
                params=params,
                members=tuple(members),
                indices=d.seq([m.index for m in members]),
                absent=d.int_lit(absent_index([m.index or 0 for m in u.members])),
            )
        )
    return tuple(out)


def _block(d: Dialect, b: NativeBlock, blobs: Blobs) -> str:
    if b.kind == "consensus":
        return d.consensus(b)
    return d.coupling_term(b, d.values(b.B, "f64", blobs), d.values(b.b, "f64", blobs))


def _plan_views(d: Dialect, plan: IRPlan, blobs: Blobs) -> tuple[PlanView, ...]:
    out = []
    for i, node in enumerate(plan_tree(plan)):
        npl = native_plan(node.path, node.plan)
        shared = tuple(
            SharedView(d.string(s.name), s.n, tuple(d.shared_var(v) for v in s.vars), d.bool_lit(s.closed))
            for s in npl.shared
        )
        objects = tuple(
            ObjectView(d.string(o.name), o.n, tuple(_block(d, b, blobs) for b in o.blocks)) for o in npl.objects
        )
        couplings = tuple(
            CouplingView(d.string(c.name), d.sense(c.sense), d.values(c.rhs, "f64", blobs)) for c in npl.couplings
        )
        local = []
        for o in node.plan.objects:
            qp = local_qp(node.plan, o)
            label = safe_comment(o.name)
            if qp is None:
                local.append(LocalView(label, False))
                continue
            local.append(
                LocalView(
                    label,
                    True,
                    d.values(qp.P, "f64", blobs),
                    d.values(qp.q, "f64", blobs),
                    d.float_lit(qp.r),
                    d.values(qp.A, "f64", blobs),
                    d.values(qp.l, "f64", blobs),
                    d.values(qp.u, "f64", blobs),
                    ", ".join(
                        f"0x{f64_bits(v):016x}ULL"
                        for v in np.concatenate([qp.P.ravel(), qp.q.ravel(), [qp.r], qp.A.ravel(), qp.l, qp.u]).tolist()
                    ),
                    (int(qp.P.size), int(qp.q.size), int(qp.A.size), int(qp.l.size)),
                )
            )
        report_objects = tuple(
            ReportView(i, tuple(VarView(d.string(v.name), v.offset, tuple(v.shape)) for v in sorted(o.vars, key=lambda v: v.name)))
            for i, o in sorted(enumerate(node.plan.objects), key=lambda io: natural_key(io[1].name))
        )
        reported = set(node.plan.colimit.shared) if node.plan.colimit is not None else {b.name for b in node.plan.shared}
        report_shared = tuple(
            ReportView(i, tuple(VarView(d.string(v.name), v.offset, tuple(v.shape)) for v in sorted(b.vars, key=lambda v: v.name)))
            for i, b in sorted(enumerate(node.plan.shared), key=lambda ib: natural_key(ib[1].name))
            if b.name in reported
        )
        name = inline(d.target, plan.name)
        if node.path:
            fn = d.namer.derive("fn", *node.path, "plan")
            doc = f"The plan `{name}` after PlanDelta " + " then ".join(f"`{p}`" for p in node.path) + "."
        else:
            fn = "plan"
            doc = f"The plan `{name}`: {len(plan.objects)} local problem(s), {len(plan.shared)} shared block(s)."
        out.append(
            PlanView(
                fn=fn,
                test_fn=f"admm_{i}_" + ("base" if not node.path else snake_case("_".join(node.path))),
                name_lit=d.string(node.plan.name),
                doc=safe_comment(doc),
                closed_form=npl.closed_form,
                feasible=npl.closed_form and npl.unit_feasible,
                shared=shared,
                objects=objects,
                couplings=couplings,
                local_fn=fn + "_local" if fn != "plan" else "local",
                report_fn=fn + "_report" if fn != "plan" else "report",
                local=tuple(local),
                needs_solver=tuple(lv.name for lv in local if not lv.qp),
                report_objects=report_objects,
                report_shared=report_shared,
                all_qp=all(lv.qp for lv in local) and npl.closed_form,
            )
        )
    return tuple(out)


def build_package(plan: IRPlan, dialect: Dialect) -> tuple[PackageView, list[Blob]]:
    """The view model of ``plan`` in ``dialect`` and the data blobs it references (deterministic:
    IR order, blobs numbered by first use)."""
    blobs = Blobs()
    schemas = _schema_views(dialect, plan)
    units = _unit_views(dialect, plan, blobs)
    plans = _plan_views(dialect, plan, blobs)
    view = PackageView(
        name=dialect.package,
        header=tuple(safe_comment(line) for line in header_lines(plan, dialect.target)),
        source_lit=dialect.string(source_name(plan)),
        hash_lit=dialect.string(plan.spec_hash),
        version_lit=dialect.string(catopt_version()),
        schemas=schemas,
        units=units,
        plans=plans,
    )
    return view, blobs.all


# ---------------------------------------------------------------------------------------------
# Names, rendering, writing
# ---------------------------------------------------------------------------------------------


def render_templates(target: Target, files: Mapping[str, str], **context: Any) -> dict[str, str]:
    """Output path -> the rendered text of its template under ``templates/<target>/``."""
    env = jinja_env(target)
    return {path: env.get_template(tpl).render(**context) for path, tpl in files.items()}


def runtime_sources(target: Target, files: Mapping[str, str]) -> dict[str, str]:
    """Output path -> the text of the static runtime file ``native/<target>/<source>``, copied
    unchanged (it is real source with its own tests, never a template)."""
    root = native_dir() / target
    return {path: (root / source).read_text(encoding="utf-8") for path, source in files.items()}


def write_files(out_dir: Path, sources: Mapping[str, str], binary: Mapping[str, bytes]) -> list[Path]:
    """Write text and binary files under ``out_dir``; returns every file written, sorted."""
    written: list[Path] = []
    for rel, text in sources.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    for rel, data in binary.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return sorted(written)


__all__ = [
    "INLINE_MAX",
    "KIND",
    "QP_CLASSES",
    "SENSE_VARIANT",
    "TERM_VARIANT",
    "Blob",
    "Blobs",
    "Dialect",
    "NativePlan",
    "NativeQp",
    "NativeUnit",
    "PackageView",
    "absent_index",
    "build_package",
    "f64_bits",
    "le_bytes",
    "local_qp",
    "native_plan",
    "native_units",
    "natural_key",
    "needs_local_solver",
    "render_templates",
    "runtime_sources",
    "write_files",
]
