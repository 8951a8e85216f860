from __future__ import annotations

import keyword
import re

import pytest

from _backend_plans import KEYWORDS, consensus_plan, keyword_plan, sharing_plan
from catopt_dsl.backends.naming import (
    CPP_RESERVED,
    PY_RESERVED_MEMBERS,
    PYTHON_RESERVED,
    RUST_KEYWORDS,
    RUST_NO_RAW,
    Namer,
    find_collisions,
    name_targets,
    report_collisions,
    pascal_case,
    snake_case,
    split_words,
)
from catopt_dsl.diagnostics import DiagnosticSink
from catopt_dsl.errors import ErrorCode
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.span import Span

PY = Namer("python")
RS = Namer("rust")
CPP = Namer("cpp")

RUST_2021 = """as break const continue crate else enum extern false fn for if impl in let loop match mod move
mut pub ref return self Self static struct super trait true type unsafe use where while async await dyn
abstract become box do final macro override priv typeof unsized virtual yield try""".split()
CPP20 = """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await co_return
co_yield decltype default delete do double dynamic_cast else enum explicit export extern false float
for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq
private protected public register reinterpret_cast requires return short signed sizeof static
static_assert static_cast struct switch template this thread_local throw true try typedef typeid
typename union unsigned using virtual void volatile wchar_t while xor xor_eq""".split()


@pytest.mark.parametrize(
    "name,words",
    [
        ("gpuFleet", ["gpu", "Fleet"]),
        ("HTTPServer", ["HTTP", "Server"]),
        ("AllocationV2", ["Allocation", "V2"]),
        ("site[3]", ["site", "3"]),
        ("tenant_a", ["tenant", "a"]),
        ("x2y", ["x2", "y"]),
        ("__", ["unnamed"]),
    ],
)
def test_split_words(name: str, words: list[str]) -> None:
    assert split_words(name) == words


def test_case_conventions_per_target() -> None:
    for n in (PY, RS, CPP):
        assert n.type_name("tenant_a") == "TenantA"
        assert n.type_name("site[3]") == "Site3"
        assert n.field_name("site[3]") == "site_3"
        assert n.fn_name("tenantDJoins") == "tenant_d_joins"
        assert n.module_name("GpuFleet") == "gpu_fleet"
        assert n.const_name("maxIter") == "MAX_ITER"
        assert n.schema_type("Allocation", 2) == "AllocationV2"
        assert n.schema_type("alloc_msg", 10) == "AllocMsgV10"


def test_python_escapes_every_keyword_and_soft_keyword() -> None:
    for kw in [*keyword.kwlist, *keyword.softkwlist, "type", "match", "case", "_"]:
        assert kw in PYTHON_RESERVED
    for kw in [*keyword.kwlist, "match", "case", "type"]:
        # Whatever the case conversion makes of it, the result is a usable, non-keyword identifier.
        for ident in (PY.field_name(kw), PY.type_name(kw), PY.const_name(kw), PY.fn_name(kw)):
            assert ident.isidentifier() and not keyword.iskeyword(ident) and not keyword.issoftkeyword(ident)
            assert ident not in PYTHON_RESERVED
    assert PY.type_name("None") == "None_" and PY.type_name("true") == "True_"
    assert PY.field_name("class") == "class_" and PY.field_name("None") == "none"
    # builtins that generated code would shadow
    assert [PY.field_name(b) for b in ("float", "int", "list", "sum", "self", "np")] == [
        "float_", "int_", "list_", "sum_", "self_", "np_"
    ]


def test_rust_keywords_raw_or_suffixed() -> None:
    for kw in RUST_2021 + ["gen"]:
        assert kw in RUST_KEYWORDS
        ident = RS.escape(kw)
        if kw in ("self", "Self", "super", "crate"):
            assert ident == kw + "_"
        else:
            assert ident == "r#" + kw
    assert RS.field_name("type") == "r#type"
    assert RS.field_name("crate") == "crate_"
    assert RS.type_name("self") == "Self_"  # `Self` cannot be a raw identifier
    assert RS.type_name("option") == "Option_"  # prelude shadowing
    assert RS.field_name("fleet") == "fleet"
    assert {"self", "Self", "super", "crate"} <= RUST_NO_RAW
    for ident in (RS.field_name(k) for k in RUST_2021):
        assert re.fullmatch(r"(r#)?[a-z_][a-z0-9_]*", ident)


def test_cpp_keywords_and_macros() -> None:
    for kw in CPP20 + ["NULL", "assert", "EOF", "errno", "stdin", "stdout", "stderr", "INT_MAX"]:
        assert kw in CPP_RESERVED
        assert CPP.escape(kw) == kw + "_"
    assert CPP.field_name("errno") == "errno_"
    assert CPP.const_name("eof") == "EOF_"
    assert CPP.const_name("int_max") == "INT_MAX_"
    assert CPP.type_name("null") == "Null"  # macros are case-sensitive
    assert CPP.field_name("type") == "type"  # not a C++ keyword


def test_derived_names_use_the_unescaped_name() -> None:
    assert PY.field_name("type") == "type_"
    assert PY.derive("fn", "encode", "type") == "encode_type"
    assert PY.derive("type", "type", "msg") == "TypeMsg"
    assert RS.derive("fn", "encode", "type") == "encode_type"
    assert RS.derive("fn", "self") == "self_"  # escaped exactly once
    assert CPP.derive("fn", "encode", "class") == "encode_class"
    assert CPP.derive("fn", "class") == "class_"
    assert PY.derive("fn", "yield") == "yield_"


def test_reserved_members_are_escaped_per_scope() -> None:
    assert PY.field_name("build", PY_RESERVED_MEMBERS["problem"]) == "build_"
    assert PY.field_name("build") == "build"
    assert PY.fn_name("solve", PY_RESERVED_MEMBERS["plan"]) == "solve_"


def test_runtime_members_are_all_reserved() -> None:
    """Every public member of the runtime bases is in the reserved set used for that scope."""
    from catopt_dsl.bindings import FamilyBase, LocalProblemBase, PlanBase, Record

    for cls, scope in ((Record, "record"), (LocalProblemBase, "problem"), (FamilyBase, "family"), (PlanBase, "plan")):
        public = {m for m in dir(cls) if not m.startswith("_")}
        assert public <= PY_RESERVED_MEMBERS[scope], (scope, public - PY_RESERVED_MEMBERS[scope])


def test_find_collisions_after_case_and_escaping() -> None:
    names = [("object", "tenant_a"), ("object", "tenantA"), ("object", "TenantB"), ("object", "tenant_b"),
             ("object", "solo")]
    found = find_collisions("python", names)
    assert [(c.identifier, [n for _, n in c.names]) for c in found] == [
        ("TenantA", ["tenant_a", "tenantA"]),
        ("TenantB", ["TenantB", "tenant_b"]),
    ]
    # separators are not significant: `type_` is the word `type`, so it meets `type` in every target
    for target in ("python", "rust", "cpp"):
        found = find_collisions(target, [("field", "type"), ("field", "type_")])
        assert [c.identifier for c in found] == [Namer(target).field_name("type")]
    # escaped names never meet a spec name (a cased name never ends in `_`)
    assert find_collisions("python", [("field", "class"), ("field", "class1"), ("field", "klass")]) == []
    # identical entries are not a collision
    assert find_collisions("rust", [("field", "a"), ("field", "a")]) == []


def test_one_collision_is_one_diagnostic_naming_every_target_it_breaks() -> None:
    sink = DiagnosticSink()
    for plan in (consensus_plan(), sharing_plan(), keyword_plan()):
        assert name_targets(plan).collisions == ()
    base = consensus_plan()
    renamed = IRPlan(**{**base.__dict__, "objects": (base.objects[0], _renamed(base.objects[1], "TenantA"))})
    names = name_targets(renamed)
    by_scope = {c.scope: c for c in names.collisions}
    # the class in the module and the attribute of the Plan class; each found in all three targets
    assert set(by_scope) == {"the module", "plan"}
    assert all(set(c.targets) == {"python", "rust", "cpp"} for c in names.collisions)
    span = Span("x.cat", 3, 1, 3, 9)
    report_collisions(names, sink, file=base.source, spans={"TenantA": span})
    diags = sink.errors()
    assert len(diags) == 2 and all(d.code is ErrorCode.NAME_COLLISION for d in diags)
    assert all(d.span == span for d in diags)
    assert "python, rust and cpp backends" in diags[0].message
    # the identifier tables say what every name becomes
    assert names.identifier("rust", "the module", "type", "tenant_a") == "TenantA"
    # an object called `plan` collides with the generated Plan class
    plan_obj = IRPlan(**{**base.__dict__, "objects": (_renamed(base.objects[0], "plan"), base.objects[1])})
    clash = [c for c in name_targets(plan_obj).collisions if c.scope == "the module"]
    assert [set(i for _, i in c.identifiers) for c in clash] == [{"Plan"}]


def test_a_param_and_a_var_that_differ_in_case_collide_as_fields() -> None:
    base = consensus_plan()
    obj = base.objects[0]
    clashing = IRPlan(**{**base.__dict__, "objects": (_with_param(obj, obj.vars[0].name.upper()), *base.objects[1:])})
    scopes = {c.scope for c in name_targets(clashing).collisions}
    assert any(s.startswith("local problem") for s in scopes)


def test_keyword_names_never_collide_in_any_target() -> None:
    for target in ("python", "rust", "cpp"):
        assert find_collisions(target, [("field", k) for k in KEYWORDS]) == []
        assert find_collisions(target, [("type", k) for k in KEYWORDS]) == []


def _renamed(obj, name: str):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(obj, name=name)


def _with_param(obj, name: str):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    import numpy as np

    from catopt_dsl.ir.model import IRParam, frozen_array

    return replace(obj, params=(*obj.params, IRParam(name, "float", (), frozen_array(np.float64(1.0)))))
