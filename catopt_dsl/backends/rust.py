"""The Rust backend: an IR plan -> a std-only Cargo crate (``catoptc compile --target rust``).

Pipeline (the same as the Python backend): :func:`native_model` extracts what native code needs
from the plan (schemas, LocalProblem units with their data, and per plan the coordinator's
structure), :func:`build_view` turns it into strings for the target (names run once through
:class:`~catopt_dsl.backends.naming.Namer`, literals escaped here, never in templates), and the
``templates/rust/*.j2`` templates only loop and read fields.

Layout of ``<out>/``::

    Cargo.toml          package ``catopt_<spec>``, edition 2021, no dependencies
    src/lib.rs          SPEC_HASH / SOURCE / CATOPTC_VERSION, the modules below
    src/runtime.rs      CRC32C, record codec, frame codec, LocalSolver, SharedProx, Coordinator
    src/schemas.rs      one struct per schema version with encode / decode, ``reencode`` dispatch
    src/problems.rs     one typed handle per LocalProblem (family: one type, ``member(i)``)
    src/plans.rs        ``plan()`` and one ``<delta>_plan()`` per PlanDelta: the PlanSpec
    src/data/*.bin      little-endian param / coupling data, embedded with ``include_bytes!``
    tests/generated.rs  ``cargo test``: CRC, record round trips + damage, frames, handles, ADMM

The plan-structure helpers (:func:`native_model`, :class:`Blobs`, the literal helpers) are shared
with the C++ backend (``cpp.py``), which renders the same model in C++17.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

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
from catopt_dsl.backends.escape import inline, rust_str, safe_comment
from catopt_dsl.backends.naming import Namer, Target, require_names, snake_case
from catopt_dsl.ir.analysis import analyze_ir
from catopt_dsl.ir.model import IRObject, IRParam, IRPlan, IRSchema, IRSchemaField, IRShared

NAMER = Namer("rust")

# Inline literals up to this many elements (readable output); larger arrays go to data files.
INLINE_MAX = 8

# ---------------------------------------------------------------------------------------------
# Target-independent native model (shared with cpp.py)
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


_KIND = {"float": "f64", "int": "i64", "bool": "bool"}


def le_bytes(values: np.ndarray, kind: str) -> bytes:
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


def _linear_rows_feasible(npl: "NativePlan") -> bool:
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
    eq_rows: list[tuple[list[int], list[float], float]] = []
    ub_rows: list[tuple[list[int], list[float], float]] = []
    coupling_rows: dict[int, list[tuple[list[int], list[float], float]]] = {}
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
                acc[r] = (cols + [x0 + int(k) for k in nz], vals + [float(B[r, k]) for k in nz], const + float(b[r]))
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

    def matrix(rows: list[tuple[list[int], list[float], float]]) -> tuple[Any, Any]:
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
    objects: list[NativeObject] = []
    for obj in plan.objects:
        blocks: list[NativeBlock] = []
        for link in plan.consensus:
            if link.object != obj.name:
                continue
            var = obj.var(link.var)
            si, vi = var_index[(link.shared, link.shared_var)]
            blocks.append(NativeBlock("consensus", shared=si, var=vi, x_offset=var.offset, size=var.size))
        for coupling in plan.couplings:
            for term in coupling.terms:
                if term.object != obj.name:
                    continue
                B = np.asarray(term.B, dtype=np.float64).reshape(-1, obj.n)
                b = np.asarray(term.b, dtype=np.float64).reshape(-1)
                blocks.append(NativeBlock("coupling", coupling=coupling_index[coupling.name], B=B, b=b))
        objects.append(NativeObject(obj.name, obj.n, tuple(blocks)))
    couplings = tuple(
        NativeCoupling(c.name, c.sense, np.asarray(c.rhs, dtype=np.float64).reshape(-1)) for c in plan.couplings
    )
    return NativePlan(path, plan, tuple(shared), tuple(objects), couplings)


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
# Rust literals
# ---------------------------------------------------------------------------------------------


def rust_f64(value: float) -> str:
    return f"f64::from_bits(0x{f64_bits(value):016x})"


def rust_i64(value: int) -> str:
    value = int(value)
    if value == -(2**63):
        return "i64::MIN"
    return f"{value}i64" if value >= 0 else f"-{-value}i64"


def rust_scalar(value: Any, kind: str) -> str:
    if kind == "f64":
        return rust_f64(float(value))
    if kind == "i64":
        return rust_i64(int(value))
    return "true" if bool(value) else "false"


def rust_vec(values: np.ndarray, kind: str, blobs: Blobs) -> str:
    """A ``Vec<T>`` expression holding ``values`` bit-exactly."""
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        return "Vec::new()"
    if flat.size <= INLINE_MAX:
        return "vec![" + ", ".join(rust_scalar(v, kind) for v in flat.tolist()) + "]"
    blob = blobs.add(flat, kind)
    return f'crate::runtime::blob_{kind}(include_bytes!("data/{blob.file_name}"))'


def _rust_type(dtype: str, shape: tuple[int, ...]) -> str:
    kind = _KIND[dtype]
    return kind if not shape else f"Vec<{kind}>"


def _value_expr(value: np.ndarray, dtype: str, shape: tuple[int, ...], blobs: Blobs) -> str:
    kind = _KIND[dtype]
    if not shape:
        return rust_scalar(np.asarray(value).reshape(()).item(), kind)
    return rust_vec(np.asarray(value), kind, blobs)


def _dims(shape: tuple[int, ...]) -> str:
    return "&[" + ", ".join(str(d) for d in shape) + "]"


# ---------------------------------------------------------------------------------------------
# View model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldView:
    ident: str
    index: int
    rust_type: str
    kind: str  # f64 | i64 | bool
    scalar: bool
    dims: str
    what: str  # string literal "Schema.vN.field"
    default_expr: str  # "" when required
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
    rust_type: str
    shape: str
    scalar: bool
    size: int
    doc: str


@dataclass(frozen=True)
class MemberView:
    index: int
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
    n: int
    doc: str
    params: tuple[ParamView, ...]
    members: tuple[MemberView, ...]
    indices: str
    absent: str  # an i64 literal that is no member's index


# The coordinator's plan views are the same for Rust and C++ (cpp.py imports them); only the
# literal syntax inside the strings differs.
@dataclass(frozen=True)
class SharedView:
    name_lit: str
    n: int
    vars: tuple[str, ...]  # SharedVarSpec expressions
    closed: str  # "true" | "false"


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


@dataclass(frozen=True)
class CrateView:
    crate: str
    header: tuple[str, ...]
    source_lit: str
    hash_lit: str
    version_lit: str
    schemas: tuple[SchemaView, ...]
    units: tuple[UnitView, ...]
    plans: tuple[PlanView, ...]


def crate_name(plan: IRPlan) -> str:
    """``catopt_<spec stem in snake_case>``: a valid package and crate name for any stem."""
    return "catopt_" + snake_case(plan.name)


def _field_view(s: IRSchema, index: int, f: IRSchemaField, seed: int) -> FieldView:
    kind = _KIND[f.dtype]
    what = f"{s.name}.v{s.version}.{f.name}"
    if f.default is None:
        default_expr = ""
    else:
        vals = flat_default(f)
        default_expr = (
            rust_scalar(vals[0], kind)
            if not f.shape
            else ("vec![" + ", ".join(rust_scalar(v, kind) for v in vals) + "]" if vals else "Vec::new()")
        )
    samples = sample_values(f, seed)
    sample_expr = (
        rust_scalar(samples[0], kind)
        if not f.shape
        else ("vec![" + ", ".join(rust_scalar(v, kind) for v in samples) + "]" if samples else "Vec::new()")
    )
    doc = f.dtype if not f.shape else f"{f.dtype} array, shape {shape_text(f.shape)}, row-major"
    if f.default is not None:
        doc += f"; default {np.asarray(f.default).tolist()!r}"
    return FieldView(
        ident=NAMER.field_name(f.name),
        index=index,
        rust_type=_rust_type(f.dtype, f.shape),
        kind=kind,
        scalar=not f.shape,
        dims=_dims(f.shape),
        what=rust_str(what),
        default_expr=default_expr,
        sample_expr=sample_expr,
        doc=safe_comment(f"`{f.name}`: {doc}"),
    )


def _schema_views(plan: IRPlan) -> tuple[SchemaView, ...]:
    out = []
    for i, s in enumerate(all_schemas(plan)):
        out.append(
            SchemaView(
                ident=NAMER.schema_type(s.name, s.version),
                test_fn=f"record_{i}_{snake_case(s.name)}_v{s.version}",
                name_lit=rust_str(s.name),
                version=s.version,
                fields=tuple(_field_view(s, j, f, i + j) for j, f in enumerate(s.fields)),
                doc=safe_comment(f"Schema `{s.name}` v{s.version}: {len(s.fields)} field(s)."),
            )
        )
    return tuple(out)


def _opt_str(value: str | None) -> str:
    return "None" if value is None else f"Some({rust_str(value)})"


def _unit_views(plan: IRPlan, blobs: Blobs) -> tuple[UnitView, ...]:
    out = []
    for i, u in enumerate(native_units(plan)):
        o = u.sample
        params = tuple(
            ParamView(
                ident=NAMER.field_name(p.name),
                name_lit=rust_str(p.name),
                rust_type=_rust_type(p.dtype, p.shape),
                shape=_dims(p.shape),
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
            by_name = {p.name: p for p in m.params}
            values = []
            for p in o.params:
                q: IRParam = by_name[p.name]
                values.append((NAMER.field_name(p.name), _value_expr(q.value, q.dtype, q.shape, blobs)))
            members.append(MemberView(int(m.index) if m.index is not None else 0, rust_str(m.name), tuple(values)))
        where = []
        if o.platform is not None:
            where.append(f"on `{o.platform}`")
        if o.adapter is not None:
            where.append(f"via `{o.adapter}`")
        what = f"LocalProblem family `{u.name}` ({len(u.members)} members)" if u.family else f"LocalProblem `{u.name}`"
        doc = what + (" " + ", ".join(where) if where else "") + f"; it {o.sense}s its objective."
        out.append(
            UnitView(
                ident=NAMER.type_name(u.name),
                test_fn=f"handle_{i}_{snake_case(u.name)}",
                family=u.family,
                name_lit=rust_str(u.name),
                platform=_opt_str(o.platform),
                adapter=_opt_str(o.adapter),
                functors="&[" + ", ".join(rust_str(f) for f in o.functors) + "]",
                var_shapes="&[" + ", ".join(f"({rust_str(v.name)}, {_dims(v.shape)})" for v in o.vars) + "]",
                n=o.n,
                doc=safe_comment(doc),
                params=params,
                members=tuple(members),
                indices="&[" + ", ".join(str(m.index) for m in members) + "]",
                absent=str(absent_index([m.index for m in members])),
            )
        )
    return tuple(out)


_SENSE = {"<=": "Le", ">=": "Ge", "==": "Eq"}
_TERM = {"free": "Free", "sum_squares": "SumSquares", "norm1": "Norm1"}


def _plan_views(plan: IRPlan, blobs: Blobs) -> tuple[PlanView, ...]:
    out = []
    for i, node in enumerate(plan_tree(plan)):
        npl = native_plan(node.path, node.plan)
        rt = "crate::runtime::"
        shared = []
        for s in npl.shared:
            vars_ = []
            for v in s.vars:
                term = f"{rt}SharedTerm::{_TERM[v.term]}" + ("" if v.term == "free" else f"({rust_f64(v.coef)})")
                vars_.append(
                    f"{rt}SharedVarSpec {{ name: {rust_str(v.name)}, offset: {v.offset}, size: {v.size}, term: {term} }}"
                )
            shared.append(SharedView(rust_str(s.name), s.n, tuple(vars_), "true" if s.closed else "false"))
        objects = []
        for o in npl.objects:
            blocks = []
            for b in o.blocks:
                if b.kind == "consensus":
                    blocks.append(
                        f"{rt}Block::Consensus {{ shared: {b.shared}, var: {b.var}, x_offset: {b.x_offset}, size: {b.size} }}"
                    )
                else:
                    blocks.append(
                        f"{rt}Block::Coupling {{ coupling: {b.coupling}, rows: {b.rows}, "
                        f"b_mat: {rust_vec(np.asarray(b.B), 'f64', blobs)}, b_vec: {rust_vec(np.asarray(b.b), 'f64', blobs)} }}"
                    )
            objects.append(ObjectView(rust_str(o.name), o.n, tuple(blocks)))
        couplings = tuple(
            CouplingView(rust_str(c.name), f"{rt}Sense::{_SENSE[c.sense]}", rust_vec(c.rhs, "f64", blobs))
            for c in npl.couplings
        )
        if node.path:
            fn = NAMER.derive("fn", *node.path, "plan")
            doc = f"The plan `{inline('rust', plan.name)}` after PlanDelta " + " then ".join(f"`{p}`" for p in node.path) + "."
        else:
            fn = "plan"
            doc = f"The plan `{inline('rust', plan.name)}`: {len(plan.objects)} local problem(s), {len(plan.shared)} shared block(s)."
        out.append(
            PlanView(
                fn=fn,
                test_fn=f"admm_{i}_" + ("base" if not node.path else snake_case("_".join(node.path))),
                name_lit=rust_str(node.plan.name),
                doc=safe_comment(doc),
                closed_form=npl.closed_form,
                feasible=npl.closed_form and npl.unit_feasible,
                shared=tuple(shared),
                objects=tuple(objects),
                couplings=couplings,
            )
        )
    return tuple(out)


def build_view(plan: IRPlan) -> tuple[CrateView, list[Blob]]:
    """The crate's view model and the data blobs it references (deterministic, IR order)."""
    blobs = Blobs()
    schemas = _schema_views(plan)
    units = _unit_views(plan, blobs)
    plans = _plan_views(plan, blobs)
    view = CrateView(
        crate=crate_name(plan),
        header=tuple(safe_comment(line) for line in header_lines(plan, "rust")),
        source_lit=rust_str(source_name(plan)),
        hash_lit=rust_str(plan.spec_hash),
        version_lit=rust_str(catopt_version()),
        schemas=schemas,
        units=units,
        plans=plans,
    )
    return view, blobs.all


# ---------------------------------------------------------------------------------------------
# Emission
# ---------------------------------------------------------------------------------------------

_FILES = (
    ("Cargo.toml", "Cargo.toml.j2"),
    ("src/lib.rs", "lib.rs.j2"),
    ("src/runtime.rs", "runtime.rs.j2"),
    ("src/schemas.rs", "schemas.rs.j2"),
    ("src/problems.rs", "problems.rs.j2"),
    ("src/plans.rs", "plans.rs.j2"),
    ("tests/generated.rs", "generated_test.rs.j2"),
)


def check_names(plan: IRPlan, target: Target) -> None:
    """Raise :class:`CatoptError` (E0701) when spec names collide as ``target`` identifiers."""
    require_names(plan, target)


def render_rust(plan: IRPlan) -> tuple[dict[str, str], list[Blob]]:
    """Relative path -> source text, plus the data blobs (no files written)."""
    view, blobs = build_view(plan)
    env = jinja_env("rust")
    out = {path: env.get_template(tpl).render(crate=view) for path, tpl in _FILES}
    return out, blobs


def write_files(out_dir: Path, sources: dict[str, str], binary: dict[str, bytes]) -> list[Path]:
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


def emit_rust(plan: IRPlan, out_dir: Path) -> list[Path]:
    """Write the crate into ``out_dir``; returns every file written, sorted.

    Raises :class:`CatoptError` (E0701) when two spec names collide as Rust identifiers.
    """
    check_names(plan, "rust")
    sources, blobs = render_rust(plan)
    binary = {f"src/data/{b.file_name}": b.data for b in blobs}
    return write_files(Path(out_dir), sources, binary)


__all__ = [
    "Blob",
    "Blobs",
    "NativePlan",
    "NativeUnit",
    "build_view",
    "crate_name",
    "emit_rust",
    "f64_bits",
    "native_plan",
    "native_units",
    "render_rust",
    "safe_comment",
]
