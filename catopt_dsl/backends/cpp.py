"""The C++ backend: an IR plan -> C++17, standard library only (``catoptc compile --target cpp``).

The same model as the Rust backend (:func:`catopt_dsl.backends.rust.native_plan`,
:func:`~catopt_dsl.backends.rust.native_units`, data blobs), rendered by ``templates/cpp/*.j2``.
Names come from :class:`~catopt_dsl.backends.naming.Namer` ``("cpp")``; string literals and
comments are escaped here, never in templates.

Layout of ``<out>/`` (``<s>`` is the spec name in snake_case)::

    CMakeLists.txt      library ``catopt_<s>``, test program, ``ctest`` target
    <s>_rt.hpp          namespace ``catopt_<s>::rt``: CRC32C, record / frame codecs, LocalSolver,
    <s>_rt.cpp          SharedProx, Coordinator (plan-independent; per-plan namespace)
    <s>.hpp             namespace ``catopt_<s>``: ``schemas``, ``problems``, ``plans``
    <s>.cpp             the schema codecs
    <s>_plan.cpp        typed handles and plan structures, data as uint64 bit patterns
    tests/test_<s>.cpp  CRC, record round trips + damage, frames, handles, ADMM on every plan
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from catopt_dsl.backends.escape import cpp_str, inline, safe_comment
from catopt_dsl.backends.naming import CPP_RESERVED_MEMBERS, Namer
from catopt_dsl.backends.rust import (
    CouplingView,
    ObjectView,
    SharedView,
    INLINE_MAX,
    Blob,
    Blobs,
    absent_index,
    check_names,
    f64_bits,
    flat_default,
    native_plan,
    native_units,
    sample_values,
    write_files,
)
from catopt_dsl.ir.model import IRPlan, IRSchema, IRSchemaField

NAMER = Namer("cpp")

#: Members the generated C++ structs define themselves: a field cannot share a name with them.

_CTYPE = {"float": "double", "int": "std::int64_t", "bool": "bool"}
_KIND = {"float": "f64", "int": "i64", "bool": "bool"}


# ---------------------------------------------------------------------------------------------
# C++ literals
# ---------------------------------------------------------------------------------------------


def cpp_f64(value: float) -> str:
    return f"::{{ns}}::rt::f64_from_bits(0x{f64_bits(value):016x}ULL)"


def cpp_i64(value: int) -> str:
    value = int(value)
    if value == -(2**63):
        return "(-9223372036854775807LL - 1)"
    return f"{value}LL" if value >= 0 else f"(-{-value}LL)"


def cpp_scalar(value: Any, kind: str) -> str:
    if kind == "f64":
        return cpp_f64(float(value))
    if kind == "i64":
        return cpp_i64(int(value))
    return "true" if bool(value) else "false"


_VEC = {"f64": "std::vector<double>", "i64": "std::vector<std::int64_t>", "bool": "std::vector<bool>"}


def cpp_vec(values: Any, kind: str, blobs: Blobs | None) -> str:
    """A ``std::vector`` expression holding ``values`` bit-exactly (big arrays as data blobs)."""
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        return _VEC[kind] + "{}"
    if flat.size <= INLINE_MAX or blobs is None:
        return _VEC[kind] + "{" + ", ".join(cpp_scalar(v, kind) for v in flat.tolist()) + "}"
    blob = blobs.add(flat, kind)
    if kind == "f64":
        return f"::{{ns}}::rt::blob_f64({blob.symbol}, {blob.count})"
    return f"{_VEC[kind]}({blob.symbol}, {blob.symbol} + {blob.count})"


def blob_definition(blob: Blob) -> tuple[str, str]:
    """(C++ element type, initialiser text) of one blob array."""
    data = blob.data
    if blob.kind == "f64":
        words = np.frombuffer(data, dtype="<u8").tolist()
        return "std::uint64_t", ", ".join(f"0x{w:016x}ULL" for w in words)
    if blob.kind == "i64":
        return "std::int64_t", ", ".join(cpp_i64(v) for v in np.frombuffer(data, dtype="<i8").tolist())
    return "bool", ", ".join("true" if b else "false" for b in data)


def _dims(shape: tuple[int, ...]) -> str:
    return "{" + ", ".join(str(d) for d in shape) + "}"


# ---------------------------------------------------------------------------------------------
# View model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldView:
    ident: str
    index: int
    ctype: str
    vec_type: str
    kind: str
    scalar: bool
    dims: str
    what: str
    default_expr: str
    sample_expr: str
    doc: str


@dataclass(frozen=True)
class SchemaView:
    ident: str
    name_lit: str
    version: int
    fields: tuple[FieldView, ...]
    doc: str


@dataclass(frozen=True)
class ParamView:
    ident: str
    name_lit: str
    ctype: str
    shape: str
    scalar: bool
    size: int
    doc: str


@dataclass(frozen=True)
class MemberView:
    index: str  # a C++ int64 literal: -2^63 has no literal of its own
    name_lit: str
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class UnitView:
    ident: str
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
    absent: str  # an int64 literal that is no member's index


@dataclass(frozen=True)
class PlanView:
    fn: str
    name_lit: str
    doc: str
    closed_form: bool
    feasible: bool  # see rust.NativePlan.unit_feasible
    shared: tuple[SharedView, ...]
    objects: tuple[ObjectView, ...]
    couplings: tuple[CouplingView, ...]


@dataclass(frozen=True)
class BlobView:
    symbol: str
    ctype: str
    init: str


@dataclass(frozen=True)
class ProjectView:
    ns: str
    stem: str
    guard: str
    header: tuple[str, ...]
    source_lit: str
    hash_lit: str
    version_lit: str
    schemas: tuple[SchemaView, ...]
    units: tuple[UnitView, ...]
    plans: tuple[PlanView, ...]
    blobs: tuple[BlobView, ...]


def file_stem(plan: IRPlan) -> str:
    """The spec name in snake_case, never starting with a digit: a safe file name for any stem."""
    return NAMER.package_name(plan.name)


def namespace(plan: IRPlan) -> str:
    """``catopt_<stem>``: never a keyword, never a double underscore."""
    return "catopt_" + file_stem(plan)


def _field_view(s: IRSchema, index: int, f: IRSchemaField, seed: int) -> FieldView:
    kind = _KIND[f.dtype]
    if f.default is None:
        default_expr = ""
    else:
        vals = flat_default(f)
        default_expr = cpp_scalar(vals[0], kind) if not f.shape else cpp_vec(np.asarray(vals), kind, None)
    samples = sample_values(f, seed)
    sample_expr = cpp_scalar(samples[0], kind) if not f.shape else cpp_vec(np.asarray(samples), kind, None)
    doc = f.dtype if not f.shape else f"{f.dtype} array, shape {shape_text(f.shape)}, row-major"
    if f.default is not None:
        doc += f"; default {np.asarray(f.default).tolist()!r}"
    return FieldView(
        ident=NAMER.field_name(f.name, CPP_RESERVED_MEMBERS["record"]),
        index=index,
        ctype=_CTYPE[f.dtype] if not f.shape else _VEC[kind],
        vec_type=_VEC[kind],
        kind=kind,
        scalar=not f.shape,
        dims=_dims(f.shape),
        what=cpp_str(f"{s.name}.v{s.version}.{f.name}"),
        default_expr=default_expr,
        sample_expr=sample_expr,
        doc=safe_comment(f"`{f.name}`: {doc}"),
    )


def _value_expr(value: Any, dtype: str, shape: tuple[int, ...], blobs: Blobs) -> str:
    kind = _KIND[dtype]
    if not shape:
        return cpp_scalar(np.asarray(value).reshape(()).item(), kind)
    return cpp_vec(np.asarray(value), kind, blobs)


_SENSE = {"<=": "Le", ">=": "Ge", "==": "Eq"}
_TERM = {"free": "Free", "sum_squares": "SumSquares", "norm1": "Norm1"}


def build_view(plan: IRPlan) -> ProjectView:
    """The project's view model (deterministic: IR order; blobs numbered by first use)."""
    ns = namespace(plan)
    blobs = Blobs()
    rt = f"::{ns}::rt::"
    schemas = tuple(
        SchemaView(
            ident=NAMER.schema_type(s.name, s.version),
            name_lit=cpp_str(s.name),
            version=s.version,
            fields=tuple(_field_view(s, j, f, i + j) for j, f in enumerate(s.fields)),
            doc=safe_comment(f"Schema `{s.name}` v{s.version}: {len(s.fields)} field(s)."),
        )
        for i, s in enumerate(all_schemas(plan))
    )
    units = []
    for u in native_units(plan):
        o = u.sample
        reserved = CPP_RESERVED_MEMBERS["problem"]
        params = tuple(
            ParamView(
                ident=NAMER.field_name(p.name, reserved),
                name_lit=cpp_str(p.name),
                ctype=_CTYPE[p.dtype] if not p.shape else _VEC[_KIND[p.dtype]],
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
            values = tuple(
                (NAMER.field_name(p.name, reserved), _value_expr(by_name[p.name].value, p.dtype, p.shape, blobs))
                for p in o.params
            )
            members.append(MemberView(cpp_i64(int(m.index) if m.index is not None else 0), cpp_str(m.name), values))
        where = []
        if o.platform is not None:
            where.append(f"on `{o.platform}`")
        if o.adapter is not None:
            where.append(f"via `{o.adapter}`")
        what = f"LocalProblem family `{u.name}` ({len(u.members)} members)" if u.family else f"LocalProblem `{u.name}`"
        units.append(
            UnitView(
                ident=NAMER.type_name(u.name),
                family=u.family,
                name_lit=cpp_str(u.name),
                platform="nullptr" if o.platform is None else cpp_str(o.platform),
                adapter="nullptr" if o.adapter is None else cpp_str(o.adapter),
                functors="{" + ", ".join(cpp_str(f) for f in o.functors) + "}",
                var_shapes="{" + ", ".join("{" + cpp_str(v.name) + ", " + _dims(v.shape) + "}" for v in o.vars) + "}",
                n=o.n,
                doc=safe_comment(what + (" " + ", ".join(where) if where else "") + f"; it {o.sense}s its objective."),
                params=params,
                members=tuple(members),
                indices="{" + ", ".join(m.index for m in members) + "}",
                absent=cpp_i64(absent_index([int(o.index) for o in u.members if o.index is not None])),
            )
        )
    plans = []
    for node in plan_tree(plan):
        npl = native_plan(node.path, node.plan)
        shared = []
        for s in npl.shared:
            vars_ = tuple(
                f"{rt}SharedVarSpec{{{cpp_str(v.name)}, {v.offset}, {v.size}, "
                f"{rt}SharedTerm{{{rt}TermKind::{_TERM[v.term]}, {cpp_f64(v.coef)}}}}}"
                for v in s.vars
            )
            shared.append(SharedView(cpp_str(s.name), s.n, vars_, "true" if s.closed else "false"))
        objects = []
        for no in npl.objects:
            blocks = []
            for b in no.blocks:
                if b.kind == "consensus":
                    blocks.append(f"{rt}Block::consensus({b.shared}, {b.var}, {b.x_offset}, {b.size})")
                else:
                    blocks.append(
                        f"{rt}Block::coupling_term({b.coupling}, {b.rows}, "
                        f"{cpp_vec(np.asarray(b.B), 'f64', blobs)}, {cpp_vec(np.asarray(b.b), 'f64', blobs)})"
                    )
            objects.append(ObjectView(cpp_str(no.name), no.n, tuple(blocks)))
        couplings = tuple(
            CouplingView(cpp_str(c.name), f"{rt}Sense::{_SENSE[c.sense]}", cpp_vec(c.rhs, "f64", blobs))
            for c in npl.couplings
        )
        if node.path:
            fn = NAMER.derive("fn", *node.path, "plan")
            doc = f"The plan `{inline('cpp', plan.name)}` after PlanDelta " + " then ".join(f"`{p}`" for p in node.path) + "."
        else:
            fn = "plan"
            doc = f"The plan `{inline('cpp', plan.name)}`: {len(plan.objects)} local problem(s), {len(plan.shared)} shared block(s)."
        plans.append(
            PlanView(
                fn,
                cpp_str(node.plan.name),
                safe_comment(doc),
                npl.closed_form,
                npl.closed_form and npl.unit_feasible,
                tuple(shared),
                tuple(objects),
                couplings,
            )
        )
    blob_views = tuple(BlobView(b.symbol, *blob_definition(b)) for b in blobs.all)
    stem = file_stem(plan)
    return ProjectView(
        ns=ns,
        stem=stem,
        guard=ns.upper() + "_HPP",
        header=tuple(safe_comment(line) for line in header_lines(plan, "cpp")),
        source_lit=cpp_str(source_name(plan)),
        hash_lit=cpp_str(plan.spec_hash),
        version_lit=cpp_str(catopt_version()),
        schemas=schemas,
        units=tuple(units),
        plans=tuple(plans),
        blobs=blob_views,
    )


# ---------------------------------------------------------------------------------------------
# Emission
# ---------------------------------------------------------------------------------------------


def render_cpp(plan: IRPlan) -> dict[str, str]:
    """Relative path -> source text (no files written)."""
    view = build_view(plan)
    env = jinja_env("cpp")
    files = {
        "CMakeLists.txt": "CMakeLists.txt.j2",
        f"{view.stem}_rt.hpp": "plan_rt.hpp.j2",
        f"{view.stem}_rt.cpp": "plan_rt.cpp.j2",
        f"{view.stem}.hpp": "plan.hpp.j2",
        f"{view.stem}.cpp": "plan.cpp.j2",
        f"{view.stem}_plan.cpp": "plan_data.cpp.j2",
        f"tests/test_{view.stem}.cpp": "test.cpp.j2",
    }
    # `{ns}` placeholders in literals (built before the namespace was known to the helpers).
    return {
        path: env.get_template(tpl).render(p=view).replace("::{ns}::", f"::{view.ns}::") for path, tpl in files.items()
    }


def emit_cpp(plan: IRPlan, out_dir: Path) -> list[Path]:
    """Write the C++ project into ``out_dir``; returns every file written, sorted.

    Raises :class:`CatoptError` (E0701) when two spec names collide as C++ identifiers.
    """
    check_names(plan, "cpp")
    return write_files(Path(out_dir), render_cpp(plan), {})


__all__ = ["CPP_RESERVED_MEMBERS", "build_view", "cpp_str", "emit_cpp", "file_stem", "namespace", "render_cpp"]
