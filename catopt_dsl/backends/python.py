"""The Python backend: an IR plan -> an importable, typed package (``catoptc compile --target python``).

Pipeline: :func:`build_view` turns the plan into a view model (strings only, names already run
through :class:`~catopt_dsl.backends.naming.Namer`), the ``templates/python/*.j2`` templates render
it in black's format (black itself runs only on a module with an over-long code line), and
:func:`~catopt_dsl.ir.serialize.plan_to_files` ships the plan itself as ``_data/plan.json`` +
``.npy`` files so the package never needs the spec.

Layout of ``<out>/<package>/``::

    __init__.py   re-exports everything below
    schemas.py    one frozen dataclass per schema version (AllocationV2)
    problems.py   one class per LocalProblem / family member, one container per family
    plan.py       Plan, plus one plan class per PlanDelta result
    py.typed      PEP 561 marker
    _data/        plan.json and aNNNNN.npy
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from catopt_dsl.backends.common import (
    Unit,
    all_schemas,
    all_units,
    catopt_version,
    doc_text,
    header_lines,
    jinja_env,
    plan_tree,
    py_literal,
    shape_text,
    source_name,
    units,
)
from catopt_dsl.backends.escape import inline, py_str
from catopt_dsl.backends.naming import PY_RESERVED_MEMBERS, Namer, require_names
from catopt_dsl.diagnostics import CatoptError  # noqa: F401  (documented as raised by emit_python)
from catopt_dsl.ir.model import IRPlan, IRSchema, IRSchemaField
from catopt_dsl.ir.serialize import DATA_FOLDER, plan_to_files

NAMER = Namer("python")

_SCALAR_TYPES = {"float": "float", "int": "int", "bool": "bool"}
_ARRAY_TYPES = {
    "float": "npt.NDArray[np.float64]",
    "int": "npt.NDArray[np.int64]",
    "bool": "npt.NDArray[np.bool_]",
}

_MODULES = ("__init__.py", "schemas.py", "problems.py", "plan.py")


# ---------------------------------------------------------------------------------------------
# View model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldView:
    attr: str
    attr_lit: str
    name_lit: str
    dtype_lit: str
    shape_lit: str
    default_lit: str
    default_expr: str  # "" when the field is required
    py_type: str
    doc: str


@dataclass(frozen=True)
class SchemaView:
    cls: str
    name: str
    name_lit: str
    version: int
    fields: tuple[FieldView, ...]
    fields_lit: str


@dataclass(frozen=True)
class ParamView:
    attr: str
    name: str
    name_lit: str
    py_type: str
    doc: str


@dataclass(frozen=True)
class ProblemView:
    cls: str
    family_cls: str  # "" for a plain LocalProblem
    name: str
    name_lit: str
    doc: str
    params: tuple[ParamView, ...]
    vars: tuple[str, ...]
    param_names_lit: str
    var_shapes_lit: str


@dataclass(frozen=True)
class MemberView:
    attr: str
    cls: str
    member_cls: str
    family: bool
    name_lit: str


@dataclass(frozen=True)
class DeltaView:
    method: str
    plan_cls: str
    name: str
    name_lit: str
    summary: str


@dataclass(frozen=True)
class PlanView:
    cls: str
    name_lit: str
    delta_path_lit: str
    doc: str
    members: tuple[MemberView, ...]
    deltas: tuple[DeltaView, ...]


@dataclass(frozen=True)
class PackageView:
    package: str
    source: str
    source_lit: str
    hash_lit: str
    version_lit: str
    header: tuple[str, ...]
    docstring: str
    schemas: tuple[SchemaView, ...]
    problems: tuple[ProblemView, ...]
    problem_exports: tuple[str, ...]
    plans: tuple[PlanView, ...]
    exports: tuple[str, ...]


LINE_LENGTH = 100


def _collection(prefix: str, opener: str, items: list[str], closer: str, indent: str) -> str:
    """What follows ``prefix`` for a bracketed collection, as black writes it: on one line when
    the line fits in :data:`LINE_LENGTH` columns, else one item per line with a trailing comma.
    (One-item tuples keep their comma on one line: ``(x,)``.)"""
    inner = ", ".join(items)
    if opener == "(" and len(items) == 1:
        inner += ","
    one = opener + inner + closer
    if len(prefix) + len(one) <= LINE_LENGTH or not items:
        return one
    body = "".join(f"{indent}    {item},\n" for item in items)
    return f"{opener}\n{body}{indent}{closer}"


def _type_doc(dtype: str, shape: tuple[int, ...]) -> str:
    return dtype if not shape else f"{dtype} array, shape {shape_text(shape)}"


def _field_view(f: IRSchemaField) -> FieldView:
    attr = NAMER.field_name(f.name, PY_RESERVED_MEMBERS["record"])
    py_type = _SCALAR_TYPES[f.dtype] if not f.shape else _ARRAY_TYPES[f.dtype]
    if f.default is None:
        default_expr = ""
    elif not f.shape:
        default_expr = py_literal(_SCALAR_CAST[f.dtype](f.default))
    else:
        default_expr = f"rt.array_default({py_literal(f.default)}, {py_str(f.dtype)}, {py_literal(tuple(f.shape))})"
    doc = _type_doc(f.dtype, f.shape)
    if f.default is not None:
        doc += f", default {py_literal(f.default)}"
    return FieldView(
        attr=attr,
        attr_lit=py_str(attr),
        name_lit=py_str(f.name),
        dtype_lit=py_str(f.dtype),
        shape_lit=py_literal(tuple(f.shape)),
        default_lit=py_literal(f.default),
        default_expr=default_expr,
        py_type=py_type,
        doc=doc_text(doc),
    )


_SCALAR_CAST = {"float": float, "int": int, "bool": bool}


def _schema_view(s: IRSchema) -> SchemaView:
    fields = tuple(_field_view(f) for f in s.fields)
    specs = [
        f"rt.FieldSpec({f.attr_lit}, {f.name_lit}, {f.dtype_lit}, {f.shape_lit}, {f.default_lit})" for f in fields
    ]
    return SchemaView(
        cls=NAMER.schema_type(s.name, s.version),
        name=s.name,
        name_lit=py_str(s.name),
        version=s.version,
        fields=fields,
        fields_lit=_collection("    FIELDS: ClassVar[tuple[rt.FieldSpec, ...]] = ", "(", specs, ")", "    "),
    )


def _problem_cls(u: Unit) -> str:
    return NAMER.type_name(u.name)


def _family_cls(u: Unit) -> str:
    return NAMER.derive("type", u.name, "family") if u.family else ""


def _problem_view(u: Unit) -> ProblemView:
    o = u.sample
    where = []
    if o.platform is not None:
        where.append(f"on `{o.platform}`")
    if o.adapter is not None:
        where.append(f"via `{o.adapter}`")
    what = f"Member of the LocalProblem family `{u.name}`" if u.family else f"LocalProblem `{u.name}`"
    doc = what + (" (" + ", ".join(where) + ")" if where else "") + f"; it {o.sense}s its objective."
    params = tuple(
        ParamView(
            attr=NAMER.field_name(p.name, PY_RESERVED_MEMBERS["problem"]),
            name=p.name,
            name_lit=py_str(p.name),
            py_type=_ARRAY_TYPES[p.dtype],
            doc=doc_text(_type_doc(p.dtype, p.shape)),
        )
        for p in o.params
    )
    return ProblemView(
        cls=_problem_cls(u),
        family_cls=_family_cls(u),
        name=u.name,
        name_lit=py_str(u.name),
        doc=doc_text(doc),
        params=params,
        vars=tuple(doc_text(f"{v.name}: {shape_text(v.shape)}, x[{v.offset}:{v.offset + v.size}]") for v in o.vars),
        param_names_lit=_collection(
            "    PARAM_NAMES: ClassVar[tuple[str, ...]] = ", "(", [py_str(p.name) for p in o.params], ")", "    "
        ),
        var_shapes_lit=_collection(
            "    VAR_SHAPES: ClassVar[dict[str, tuple[int, ...]]] = ",
            "{",
            [f"{py_str(v.name)}: {py_literal(tuple(v.shape))}" for v in o.vars],
            "}",
            "    ",
        ),
    )


def _plan_cls(path: tuple[str, ...]) -> str:
    return "Plan" if not path else NAMER.derive("type", *path, "plan")


def _plan_view(path: tuple[str, ...], plan: IRPlan) -> PlanView:
    reserved = PY_RESERVED_MEMBERS["plan"]
    members = tuple(
        MemberView(
            attr=NAMER.field_name(u.name, reserved),
            cls=_family_cls(u) or _problem_cls(u),
            member_cls=_problem_cls(u),
            family=u.family,
            name_lit=py_str(u.name),
        )
        for u in units(plan)
    )
    deltas = tuple(
        DeltaView(
            method=NAMER.fn_name(d.name, reserved),
            plan_cls=_plan_cls(path + (d.name,)),
            name=d.name,
            name_lit=py_str(d.name),
            summary=doc_text("; ".join(d.ops) if d.ops else "no changes"),
        )
        for d in plan.deltas
    )
    if path:
        doc = f"The plan `{inline('python', plan.name)}` after PlanDelta " + " then ".join(f"`{p}`" for p in path) + "."
    else:
        doc = f"The plan `{inline('python', plan.name)}`: {len(plan.objects)} local problem(s), {len(plan.shared)} shared block(s)."
    return PlanView(
        cls=_plan_cls(path),
        name_lit=py_str(plan.name),
        delta_path_lit=py_literal(path),
        doc=doc_text(doc),
        members=members,
        deltas=deltas,
    )


def package_name(plan: IRPlan) -> str:
    """The generated package's import name: the spec name in snake_case, escaped (see
    :meth:`Namer.package_name`)."""
    return NAMER.package_name(plan.name)


def build_view(plan: IRPlan) -> PackageView:
    """The view model of the whole package (deterministic: everything follows IR order)."""
    schemas = tuple(_schema_view(s) for s in all_schemas(plan))
    problems = tuple(_problem_view(u) for u in all_units(plan))
    plans = tuple(_plan_view(n.path, n.plan) for n in plan_tree(plan))
    problem_exports = tuple(c for p in problems for c in (p.cls, p.family_cls) if c)
    exports = tuple(
        sorted(
            {py_str(n) for n in ["PlanResult", *(p.cls for p in plans), *problem_exports, *(s.cls for s in schemas)]}
        )
    )
    src = source_name(plan)
    return PackageView(
        package=package_name(plan),
        source=doc_text(inline("python", src)),
        source_lit=py_str(src),
        hash_lit=py_str(plan.spec_hash),
        version_lit=py_str(catopt_version()),
        header=tuple(header_lines(plan, "python")),
        docstring=doc_text(
            f"Generated Python package for the catopt plan `{inline('python', plan.name)}` ({inline('python', src)})."
        ),
        schemas=schemas,
        problems=problems,
        problem_exports=problem_exports,
        plans=plans,
        exports=exports,
    )


# ---------------------------------------------------------------------------------------------
# Emission
# ---------------------------------------------------------------------------------------------


def _unsplittable(line: str) -> bool:
    """A line black leaves as it is however long: a comment (the header names the spec and its
    hash) or a one-line docstring (black neither splits a lone string nor moves the closing quotes
    of a one-line docstring; every settable param's docstring names the param and its shape, so
    long names or shapes make these the usual long lines)."""
    body = line.lstrip()
    if body.startswith("#"):
        return True
    return len(body) >= 6 and body.startswith('"""') and body.endswith('"""') and body.count('"""') == 2


def render_python(plan: IRPlan) -> dict[str, str]:
    """Module file name -> formatted source text (no files written).

    The templates and the view write black's format themselves (``_collection`` wraps the only
    collections that can grow), so formatting costs nothing for the usual plan: black took 20 of
    the 23 s of emitting a 1,000-object package. Only a file with a line over the limit (very long
    names or default values) still goes through black, so the output is black's in every case; a
    test checks that black leaves every emitted file unchanged.
    """
    view = build_view(plan)
    env = jinja_env("python")
    out: dict[str, str] = {}
    for module in _MODULES:
        text = env.get_template(module + ".j2").render(pkg=view)
        if any(len(line) > LINE_LENGTH and not _unsplittable(line) for line in text.splitlines()):
            import black  # only for the rare file that needs it: importing black costs 0.2 s

            text = black.format_str(text, mode=black.Mode(line_length=LINE_LENGTH))
        out[module] = text
    return out


def emit_python(plan: IRPlan, out_dir: Path) -> list[Path]:
    """Write the package ``<out_dir>/<package_name(plan)>/``; returns every file written, sorted.

    Raises :class:`CatoptError` (E0701) when two spec names collide as Python identifiers. An
    existing package folder of the same name is replaced, so stale files never linger.
    """
    require_names(plan, "python")
    sources = render_python(plan)
    pkg_dir = Path(out_dir) / package_name(plan)
    if pkg_dir.exists():
        shutil.rmtree(pkg_dir)
    pkg_dir.mkdir(parents=True)
    written: list[Path] = []
    for module, text in sources.items():
        path = pkg_dir / module
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    marker = pkg_dir / "py.typed"
    marker.write_text("", encoding="utf-8")
    written.append(marker)
    written.extend(plan_to_files(plan, pkg_dir / DATA_FOLDER))
    return sorted(written)
