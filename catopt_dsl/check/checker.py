"""Declaration-level checking: names, kinds, schemas, morphisms, limits, colimits, functors, deltas.

Expressions (types, shapes, curvature, constants, data) are checked by :mod:`catopt_dsl.check.exprs`;
this module walks the items, builds one scope per object (one per family member) and classifies
every Limit constraint as consensus or coupling. It never raises on user input: every problem is a
diagnostic in the sink, and checking goes on so one run reports everything.

The result, :class:`CheckedPlan`, is a side table that lowering reads; the AST is not modified.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from catopt_dsl import limits
from catopt_dsl.check.exprs import (
    TypeMap,
    Typer,
    check_affine,
    check_constraint,
    check_objective,
    check_param,
    check_type_size,
    eval_const,
    make_checker,
)
from catopt_dsl.check.external import ExternalCheck, check_adapter, check_external, check_platform
from catopt_dsl.check.scope import ExprContext, IndexSymbol, ParamSymbol, Scope, VarSymbol
from catopt_dsl.check.suggest import suggest
from catopt_dsl.diagnostics import DiagnosticSink, help_, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast

CANONICAL = "canonical"


def did_you_mean(name: str, candidates: Iterable[str], sink: DiagnosticSink | None = None) -> list:
    """A "did you mean" help line, within the run's suggestion budget (:func:`suggest`)."""
    match = suggest(name, candidates, sink)
    return [help_(f"did you mean `{match}`?")] if match else []


def member_name(base: str, index: int | None) -> str:
    return base if index is None else f"{base}[{index}]"


# ---------------------------------------------------------------------------------------------
# The side table
# ---------------------------------------------------------------------------------------------


@dataclass
class CheckedObject:
    name: str
    decl: ast.LocalProblem
    index: int | None
    scope: Scope
    params: list[ParamSymbol]
    vars: list[VarSymbol]
    functors: list[str]
    ok: bool = True
    types: TypeMap | None = None  # what typing learned about its expressions (lowering reads it)
    external: ExternalCheck | None = None  # its external loss, checked (``external.py``)


@dataclass
class CheckedShared:
    name: str
    decl: ast.SharedVariables
    scope: Scope
    params: list[ParamSymbol]
    vars: list[VarSymbol]
    ok: bool = True
    types: TypeMap | None = None


@dataclass
class CheckedMorphism:
    name: str
    decl: ast.Morphism
    index: int | None
    source: CheckedObject
    target: CheckedShared
    schema: ast.Schema
    fields: list[tuple[str, ast.Expr]]  # every schema field, defaults filled in, declaration order
    scope: Scope  # the source object's scope (plus the morphism family's index)
    types: TypeMap | None = None


@dataclass
class ConsensusLink:
    limit: str
    object: CheckedObject
    var: str
    shared: CheckedShared
    shared_var: str
    shape: tuple[int, ...]


@dataclass
class CouplingTerm:
    morphism: CheckedMorphism
    field: str


@dataclass
class CouplingLimit:
    """One coupling constraint. ``name`` is its identity, unique in the plan: the Limit's name (a
    family member's ``lim[2]``) plus ``#k``, k its position among the Limit's constraints from 0
    (docs/language.md, "Coupling identities"). Two constraints of one Limit are two couplings."""

    name: str
    limit: str
    shared: CheckedShared
    sense: str
    rhs: np.ndarray
    shape: tuple[int, ...]
    terms: list[CouplingTerm]
    #: the right side as written, its scope and types (lowering keeps it, so a changed shared
    #: param can re-evaluate the bound)
    rhs_expr: ast.Expr | None = None
    rhs_scope: Scope | None = None
    rhs_types: TypeMap | None = None


@dataclass
class CheckedDelta:
    name: str
    decl: ast.PlanDelta
    ops: list[str]
    result: CheckedPlan | None


@dataclass
class CheckedPlan:
    items: list[ast.Item]
    schemas: dict[tuple[str, int], ast.Schema] = field(default_factory=dict)
    shared: dict[str, CheckedShared] = field(default_factory=dict)
    objects: list[CheckedObject] = field(default_factory=list)
    morphisms: list[CheckedMorphism] = field(default_factory=list)
    consensus: list[ConsensusLink] = field(default_factory=list)
    couplings: list[CouplingLimit] = field(default_factory=list)
    functors: list[ast.Functor] = field(default_factory=list)
    colimit: ast.Colimit | None = None
    deltas: list[CheckedDelta] = field(default_factory=list)
    #: (schema, version, field) -> the folded default of every field that has one
    schema_defaults: dict[tuple[str, int, str], np.ndarray] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------------------------


class Checker:
    def __init__(self, ctx: ExprContext, sink: DiagnosticSink, file: str) -> None:
        self.ctx = ctx
        self.sink = sink
        self.file = file
        self.expanded = 0  # items after family expansion (MAX_OBJECTS)
        self.elements = 0  # declared param and var elements after expansion (MAX_TOTAL_ELEMENTS)

    def _dym(self, name: str, candidates: Iterable[str]) -> list:
        return did_you_mean(name, candidates, self.sink)

    # -- expansion budget -------------------------------------------------------------------------
    def _members(self, item: ast.LocalProblem | ast.Morphism | ast.Limit, per_member: int = 0) -> Sequence[int | None]:
        """The members to check for ``item`` (``[None]`` for a plain item), or none when expanding it
        would pass MAX_OBJECTS items or MAX_TOTAL_ELEMENTS param/var elements (E0007, reported at
        the item, and checked before a single member is built)."""
        count = len(item.family.members) if item.family is not None else 1
        if self.expanded + count > limits.MAX_OBJECTS:
            self.sink.error(
                ErrorCode.LIMIT,
                f"expanding `{item.name}` makes the plan larger than {limits.MAX_OBJECTS:,} objects, morphisms and limits",
                item.family.span if item.family is not None else item.name_span,
                note("every family member counts as one"),
            )
            return []
        if per_member and self.elements + count * per_member > limits.MAX_TOTAL_ELEMENTS:
            self.sink.error(
                ErrorCode.LIMIT,
                f"expanding `{item.name}` gives the plan more than {limits.MAX_TOTAL_ELEMENTS:,} param and var elements",
                item.family.span if item.family is not None else item.name_span,
                note(f"each member declares {per_member:,}"),
            )
            return []
        self.expanded += count
        self.elements += count * per_member
        return item.family.members if item.family is not None else [None]

    # -- entry ------------------------------------------------------------------------------------
    def check(self, items: Sequence[ast.Item], with_deltas: bool = True) -> CheckedPlan:
        plan = CheckedPlan(list(items))
        self._current = plan
        self._links: set[tuple[str, str, str, str]] = set()  # consensus links seen (each once)
        named = self._collect(items, plan)
        self._check_schemas(plan)
        for item in items:
            if isinstance(item, ast.SharedVariables) and named.get(item.name) is item:
                plan.shared[item.name] = self._check_shared(item)
        for item in items:
            if isinstance(item, ast.Functor):
                self._check_functor_decl(item)
                plan.functors.append(item)
        for item in items:
            if isinstance(item, ast.LocalProblem) and named.get(item.name) is item:
                plan.objects.extend(self._check_local(item, plan))
        self._check_owners([i for i in items if isinstance(i, ast.LocalProblem) and named.get(i.name) is i])
        library = bool(items) and all(isinstance(i, ast.Schema) for i in items)  # schemas to import
        if not library and not any(isinstance(i, ast.LocalProblem) for i in items):
            self.sink.error(
                ErrorCode.NO_OBJECTIVE,
                "the plan declares no LocalProblem",
                Span(self.file, 1, 1, 1, 2),
                help_("declare at least one `LocalProblem name { var x: float; minimize ...; }`"),
            )
        objects = {o.name: o for o in plan.objects}
        families = {i.name: i for i in items if isinstance(i, ast.LocalProblem) and i.family is not None}
        # SharedVariables blocks some morphism into which failed to check (already reported): a
        # coupling that finds no field there reports nothing more, the field is in the broken one.
        self._broken_into: set[str] = set()
        for item in items:
            if isinstance(item, ast.Morphism) and named.get(item.name) is item:
                checked = self._check_morphism(item, plan, objects, families, named)
                if len(checked) < (len(item.family.members) if item.family is not None else 1):
                    self._broken_into.add(item.target)
                plan.morphisms.extend(checked)
        for item in items:
            if isinstance(item, ast.Limit) and named.get(item.name) is item:
                self._check_limit(item, plan, objects, families, named)
        for item in items:
            if isinstance(item, ast.Colimit):
                self._check_colimit(item, plan, named)
        if with_deltas:
            self._check_deltas([i for i in items if isinstance(i, ast.PlanDelta) and named.get(i.name) is i], plan)
        self._warn_unlinked(plan)
        # Once, for the plan as written (a delta's plan repeats its items), and only for a plan
        # without errors: a misspelt name would otherwise also warn that the intended one is unused.
        if with_deltas and not self.sink.has_errors:
            self._warn_unused(items, plan)
        return plan

    # -- names ------------------------------------------------------------------------------------
    def _collect(self, items: Sequence[ast.Item], plan: CheckedPlan) -> dict[str, ast.Item]:
        named: dict[str, ast.Item] = {}
        for item in items:
            if isinstance(item, ast.Schema):
                key = (item.name, item.version)
                if key in plan.schemas:
                    first = plan.schemas[key]
                    self.sink.error(
                        ErrorCode.DUPLICATE,
                        f"schema `{item.name} v{item.version}` is defined twice",
                        item.name_span,
                        note("first defined here", first.name_span),
                    )
                else:
                    plan.schemas[key] = item
                continue
            name = item.name
            if name in named:
                earlier = named[name]
                self.sink.error(
                    ErrorCode.DUPLICATE,
                    f"`{name}` is defined twice",
                    item.name_span,
                    note(f"first defined here as a {_kind(earlier)}", earlier.name_span),
                )
                continue
            named[name] = item
        return named

    def _lookup_item(self, name: str, span: Span, named: dict[str, ast.Item], want: type, what: str, code: ErrorCode) -> ast.Item | None:
        item = named.get(name)
        if item is None:
            cands = [n for n, i in named.items() if isinstance(i, want)]
            self.sink.error(ErrorCode.UNKNOWN_NAME, f"unknown {what} `{name}`", span, *self._dym(name, cands))
            return None
        if not isinstance(item, want):
            self.sink.error(code, f"`{name}` is a {_kind(item)}, not a {what}", span)
            return None
        return item

    # -- schemas ----------------------------------------------------------------------------------
    def _check_schemas(self, plan: CheckedPlan) -> None:
        by_name: dict[str, list[ast.Schema]] = {}
        for (name, _), sch in sorted(plan.schemas.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            by_name.setdefault(name, []).append(sch)
            seen: dict[str, ast.SchemaField] = {}
            empty = Scope()
            for f in sch.fields:
                if f.name in seen:
                    self.sink.error(ErrorCode.DUPLICATE, f"field `{f.name}` appears twice in schema `{sch.name} v{sch.version}`", f.span)
                seen[f.name] = f
                if not check_type_size(f.type, f"field `{f.name}`", self.sink):
                    continue
                if f.default is not None:
                    decl = ast.ParamDecl(f.name, f.type, f.default, f.span, f.span)
                    value = check_param(decl, empty, self.ctx, self.sink).value
                    if value is not None:
                        plan.schema_defaults[(sch.name, sch.version, f.name)] = value
        for versions in by_name.values():
            for old, new in zip(versions, versions[1:]):
                self._check_evolution(old, new)

    def _check_evolution(self, old: ast.Schema, new: ast.Schema) -> None:
        for i, f in enumerate(old.fields):
            if i >= len(new.fields):
                self.sink.error(
                    ErrorCode.SCHEMA_EVOLUTION,
                    f"`{new.name} v{new.version}` drops field `{f.name}` of v{old.version}",
                    new.name_span,
                    note("fields are identified by position: a new version may only append fields"),
                )
                return
            g = new.fields[i]
            if (g.name, g.type.base, g.type.dims) != (f.name, f.type.base, f.type.dims):
                self.sink.error(
                    ErrorCode.SCHEMA_EVOLUTION,
                    f"field {i} of `{new.name} v{new.version}` is `{g.name}: {_type_str(g.type)}`, "
                    f"but v{old.version} has `{f.name}: {_type_str(f.type)}`",
                    g.span,
                    note("fields are identified by position: a new version may only append fields"),
                )
        for g in new.fields[len(old.fields):]:
            if g.default is None:
                self.sink.error(
                    ErrorCode.SCHEMA_EVOLUTION,
                    f"field `{g.name}` appended in `{new.name} v{new.version}` needs a default",
                    g.span,
                    help_(f"readers of v{new.version} must be able to decode v{old.version} records: add `= ...`"),
                )

    # -- bodies -----------------------------------------------------------------------------------
    def _body_scope(
        self, body: ast.Body, scope: Scope, owner: str, typer: Typer
    ) -> tuple[list[ParamSymbol], list[VarSymbol], bool]:
        ok = True
        params: list[ParamSymbol] = []
        vars_: list[VarSymbol] = []
        # Variables are defined first so that a param value reading one is reported as a variable
        # used where a constant is needed (E0107), not as an unknown name.
        for v in body.vars:
            if _defined_here(scope, v.name):
                self.sink.error(ErrorCode.DUPLICATE, f"`{v.name}` is declared twice in `{owner}`", v.name_span)
                ok = False
                continue
            if v.type.base != "float":
                self.sink.error(
                    ErrorCode.TYPE,
                    f"variable `{v.name}` is `{v.type.base}`: only `float` variables keep the problem convex",
                    v.type.span,
                    help_("declare it `float` (integer and boolean variables make the problem non-convex)"),
                )
                ok = False
            if any(d == 0 for d in v.type.dims):
                self.sink.error(ErrorCode.VALUE_SHAPE, f"variable `{v.name}` has an empty shape", v.type.span)
                ok = False
            if not check_type_size(v.type, f"variable `{v.name}`", self.sink):
                ok = False
            sym_v = VarSymbol(v.name, tuple(v.type.dims), v.name_span)
            scope.define(sym_v)
            vars_.append(sym_v)
        for p in body.params:
            existing = scope._symbols.get(p.name)
            if existing is not None:
                later = p.name_span if (p.name_span.line, p.name_span.col) > (existing.span.line, existing.span.col) else existing.span
                self.sink.error(ErrorCode.DUPLICATE, f"`{p.name}` is declared twice in `{owner}`", later)
                ok = False
                continue
            sym = check_param(p, scope, self.ctx, self.sink, typer)
            if sym.value is None:
                ok = False
            scope.define(sym)
            params.append(sym)
        return params, vars_, ok

    def _check_objectives(
        self, body: ast.Body, scope: Scope, owner: str, span: Span, required: bool, typer: Typer
    ) -> bool:
        ok = True
        if len(body.objectives) > 1:
            for extra in body.objectives[1:]:
                self.sink.error(
                    ErrorCode.DUPLICATE,
                    f"`{owner}` has more than one objective",
                    extra.span,
                    note("first objective here", body.objectives[0].span),
                    help_("add the terms into one `minimize` (or `maximize`)"),
                )
            ok = False
        if not body.objectives and required:
            self.sink.error(
                ErrorCode.NO_OBJECTIVE,
                f"LocalProblem `{owner}` has no objective",
                span,
                help_("add `minimize <expr>;` (use `minimize 0;` for a pure feasibility problem)"),
            )
            ok = False
        for obj in body.objectives[:1]:
            ok = check_objective(obj, scope, self.ctx, self.sink, typer) and ok
        for c in body.constraints:
            ok = check_constraint(c, scope, self.ctx, self.sink, typer) and ok
        return ok

    def _check_shared(self, item: ast.SharedVariables) -> CheckedShared:
        scope = Scope()
        typer = make_checker(scope, self.ctx, self.sink)
        params, vars_, ok = self._body_scope(item.body, scope, item.name, typer)
        ok = self._check_objectives(item.body, scope, item.name, item.name_span, False, typer) and ok
        return CheckedShared(item.name, item, scope, params, vars_, ok, typer.type_map())

    def _check_local(self, item: ast.LocalProblem, plan: CheckedPlan) -> list[CheckedObject]:
        out = []
        if not item.body.vars:
            self.sink.error(
                ErrorCode.NO_OBJECTIVE,
                f"LocalProblem `{item.name}` declares no variables",
                item.name_span,
                help_("declare what it decides: `var x: float[4];`"),
            )
        decls: list[ast.ParamDecl | ast.VarDecl] = [*item.body.params, *item.body.vars]
        # A declaration too large on its own is reported at its type (E0007) when the body is checked.
        sizes = [limits.elements(d.type.dims) for d in decls]
        per_member = sum(n for n in sizes if n <= limits.MAX_ARRAY_ELEMENTS)
        adapter = check_adapter(item, self.sink, self.ctx.cache)
        check_platform(item, self.sink, self.ctx.cache)
        for index in self._members(item, per_member):
            scope = Scope()
            if item.family is not None and index is not None:
                scope.define(IndexSymbol(item.family.index, index, item.family.span))
            name = member_name(item.name, index)
            typer = make_checker(scope, self.ctx, self.sink)
            params, vars_, ok = self._body_scope(item.body, scope, name, typer)
            applied: list[str] = []
            for functor in plan.functors:
                if functor.source in (item.adapter, item.platform) and functor.target == CANONICAL:
                    ok = self._apply_functor(functor, item, name, scope, params) and ok
                    applied.append(functor.name)
            external = check_external(item, name, index, adapter, self.ctx, self.sink)
            if item.body.externals and external is None:
                ok = False
            required = not item.body.externals
            ok = self._check_objectives(item.body, scope, name, item.name_span, required, typer) and ok
            out.append(CheckedObject(name, item, index, scope, params, vars_, applied, ok, typer.type_map(), external))
        return out

    def _check_owners(self, locals_: Sequence[ast.LocalProblem]) -> None:
        """Every `owner` is an Ed25519 did:key, and a plan that names owners names one for each object.

        The second rule is what makes authentication always on for such a plan: a distributed run
        signs every member's frames with its owner's key, so no object may be left without one.
        """
        owned = [i for i in locals_ if i.owner is not None]
        if not owned:
            return
        # Imported here: only specs that name owners pay for the identity package.
        from catopt_dsl.identity.did import validate_did

        for item in owned:
            assert item.owner is not None and item.owner_span is not None
            why = validate_did(item.owner)
            if why is not None:
                self.sink.error(
                    ErrorCode.OWNER,
                    f"the owner of `{item.name}` is not a usable DID: {why}",
                    item.owner_span,
                    help_('an owner is an Ed25519 did:key, `owner "did:key:z6Mk..."`; '
                          '`catoptc identity new --out KEYFILE` makes one and prints it'),
                )
        first = owned[0]
        for item in locals_:
            if item.owner is None:
                self.sink.error(
                    ErrorCode.OWNER,
                    f"LocalProblem `{item.name}` has no owner, but this plan names owners",
                    item.name_span,
                    note(f"`{first.name}` names its owner here", first.owner_span),
                    help_(f'give it one: `LocalProblem {item.name}{"[...]" if item.family is not None else ""} owner "did:key:..." {{ ... }}`'),
                )

    # -- functors ---------------------------------------------------------------------------------
    def _check_functor_decl(self, f: ast.Functor) -> None:
        if f.target != CANONICAL:
            self.sink.error(
                ErrorCode.FUNCTOR,
                f"functor `{f.name}` maps into `{f.target}`; functors map a platform or adapter into `{CANONICAL}`",
                f.target_span,
                help_(f"write `Functor {f.name} : {f.source} -> {CANONICAL} {{ ... }}`"),
            )
        seen: set[str] = set()
        for r in f.rules:
            if r.name in seen:
                self.sink.error(ErrorCode.DUPLICATE, f"functor `{f.name}` defines `{r.name}` twice", r.name_span)
            seen.add(r.name)

    def _apply_functor(self, f: ast.Functor, item: ast.LocalProblem, name: str, scope: Scope, params: list[ParamSymbol]) -> bool:
        ok = True
        for r in f.rules:
            if any(p.name == r.name for p in params):
                self.sink.error(
                    ErrorCode.FUNCTOR,
                    f"functor `{f.name}` defines `{r.name}`, which LocalProblem `{name}` already declares",
                    r.name_span,
                    note(f"`{item.name}` runs `via {item.adapter}`" if item.adapter == f.source else f"`{item.name}` runs `on {item.platform}`"),
                )
                ok = False
                continue
            missing = [n for n in _names_in(r.expr) if scope.lookup(n) is None]
            if missing:
                self.sink.error(
                    ErrorCode.FUNCTOR,
                    f"functor `{f.name}` reads `{missing[0]}`, which LocalProblem `{name}` does not declare",
                    r.span,
                    *self._dym(missing[0], [p.name for p in params]),
                )
                ok = False
                continue
            if any(isinstance(scope.lookup(n), VarSymbol) for n in _names_in(r.expr)):
                self.sink.error(ErrorCode.FUNCTOR, f"functor rule `{r.name}` must be computed from params, not variables", r.span)
                ok = False
                continue
            value = eval_const(r.expr, scope, self.ctx, self.sink)
            if value is None:
                ok = False
                continue
            value = np.asarray(value, dtype=np.float64)
            sym = ParamSymbol(r.name, "float", tuple(value.shape), value, r.name_span)
            scope.define(sym)
            params.append(sym)
        return ok

    # -- morphisms --------------------------------------------------------------------------------
    def _check_morphism(
        self,
        item: ast.Morphism,
        plan: CheckedPlan,
        objects: dict[str, CheckedObject],
        families: dict[str, ast.LocalProblem],
        named: dict[str, ast.Item],
    ) -> list[CheckedMorphism]:
        src_item = self._lookup_item(item.source.name, item.source.span, named, ast.LocalProblem, "LocalProblem", ErrorCode.MORPHISM_ENDPOINT)
        tgt_item = self._lookup_item(item.target, item.target_span, named, ast.SharedVariables, "SharedVariables block", ErrorCode.MORPHISM_ENDPOINT)
        schema = plan.schemas.get((item.schema, item.version))
        if schema is None:
            versions = sorted(v for (n, v) in plan.schemas if n == item.schema)
            if versions:
                self.sink.error(
                    ErrorCode.UNKNOWN_SCHEMA,
                    f"schema `{item.schema}` has no version v{item.version}",
                    item.schema_span,
                    note("known versions: " + ", ".join(f"v{v}" for v in versions)),
                )
            else:
                self.sink.error(
                    ErrorCode.UNKNOWN_SCHEMA,
                    f"unknown schema `{item.schema}`",
                    item.schema_span,
                    *self._dym(item.schema, [n for (n, _) in plan.schemas]),
                )
        if src_item is None or tgt_item is None or schema is None:
            return []
        assert isinstance(src_item, ast.LocalProblem)
        target = plan.shared.get(item.target)
        if target is None:
            return []
        out = []
        for index in self._members(item):
            fam_scope = Scope()
            if item.family is not None and index is not None:
                fam_scope.define(IndexSymbol(item.family.index, index, item.family.span))
            source = self._resolve_source(item, src_item, fam_scope, objects)
            if source is None:
                continue
            name = member_name(item.name, index)
            if not self._coefficients_fit(item, schema, source):
                break
            scope = source.scope.child()
            if item.family is not None and index is not None:
                scope.define(IndexSymbol(item.family.index, index, item.family.span))
            typer = make_checker(scope, self.ctx, self.sink)
            fields = self._check_mappings(item.mappings, schema, scope, f"morphism `{name}`", item.span, typer)
            if fields is not None:
                out.append(CheckedMorphism(name, item, index, source, target, schema, fields, scope, typer.type_map()))
        return out

    def _coefficients_fit(self, item: ast.Morphism, schema: ast.Schema, source: CheckedObject) -> bool:
        """Each field of a morphism becomes a dense coefficient matrix over the source's stacked
        variables (field elements x var elements): refuse one above MAX_COEFFICIENTS (E0007)."""
        n = sum(limits.elements(v.shape) for v in source.vars)
        for f in schema.fields:
            m = limits.elements(f.type.dims)
            if m * n > limits.MAX_COEFFICIENTS:
                self.sink.error(
                    ErrorCode.LIMIT,
                    f"field `{f.name}` of morphism `{item.name}` needs a {m:,} x {n:,} coefficient matrix; "
                    f"the limit is {limits.MAX_COEFFICIENTS:,} entries",
                    item.name_span,
                    note(f"`{f.name}` has {m:,} elements and `{source.name}` {n:,} variable elements"),
                )
                return False
        return True

    def _resolve_source(self, item: ast.Morphism, src: ast.LocalProblem, fam_scope: Scope, objects: dict[str, CheckedObject]) -> CheckedObject | None:
        ref = item.source
        if src.family is None:
            if ref.index is not None:
                self.sink.error(ErrorCode.MORPHISM_ENDPOINT, f"`{src.name}` is not a family; it takes no index", ref.span)
                return None
            return objects.get(src.name)
        if ref.index is None:
            self.sink.error(
                ErrorCode.MORPHISM_ENDPOINT,
                f"`{src.name}` is a family: pick a member, e.g. `{src.name}[i]` in a morphism family",
                ref.span,
                help_(f"write `Morphism {item.name}[i in {src.family.start}..{src.family.stop}] : {src.name}[i] -> ...`"),
            )
            return None
        value = eval_const(ref.index, fam_scope, self.ctx, self.sink)
        if value is None:
            return None
        idx = np.asarray(value)
        if idx.shape != () or not np.issubdtype(idx.dtype, np.integer):
            self.sink.error(ErrorCode.TYPE, "a family member index must be an integer", ref.index.span)  # type: ignore[union-attr]
            return None
        k = int(idx)
        if k not in src.family.members:
            self.sink.error(
                ErrorCode.INDEX,
                f"`{src.name}[{k}]` is out of range: the family has members {src.family.start}..{src.family.stop}",
                ref.span,
            )
            return None
        return objects.get(member_name(src.name, k))

    def _check_mappings(
        self, mappings: Sequence[ast.FieldMap], schema: ast.Schema, scope: Scope, what: str, span: Span, typer: Typer
    ) -> list[tuple[str, ast.Expr]] | None:
        ok = True
        by_name = {f.name: f for f in schema.fields}
        given: dict[str, ast.FieldMap] = {}
        for m in mappings:
            if m.field in given:
                self.sink.error(ErrorCode.DUPLICATE, f"field `{m.field}` is mapped twice", m.field_span)
                ok = False
                continue
            given[m.field] = m
            f = by_name.get(m.field)
            if f is None:
                self.sink.error(
                    ErrorCode.UNKNOWN_FIELD,
                    f"schema `{schema.name} v{schema.version}` has no field `{m.field}`",
                    m.field_span,
                    *self._dym(m.field, by_name),
                )
                ok = False
                continue
            t = check_affine(m.expr, scope, self.ctx, self.sink, f"{what} field `{m.field}`", typer)
            if t is None:
                ok = False
                continue
            if tuple(t.shape) != tuple(f.type.dims) and t.shape != ():
                self.sink.error(
                    ErrorCode.FIELD_MISMATCH,
                    f"field `{m.field}` is `{_type_str(f.type)}`, but the expression has shape {_shape_str(t.shape)}",
                    m.expr_span if hasattr(m, "expr_span") else _expr_span(m.expr),
                )
                ok = False
            elif f.type.base != "float" and t.curvature.name != "CONSTANT":
                self.sink.error(
                    ErrorCode.FIELD_MISMATCH,
                    f"field `{m.field}` is `{_type_str(f.type)}`: only float fields can carry variables",
                    _expr_span(m.expr),
                )
                ok = False
        out: list[tuple[str, ast.Expr]] = []
        for f in schema.fields:
            if f.name in given:
                out.append((f.name, given[f.name].expr))
            elif f.default is not None:
                typer.type(f.default)  # constant; typed here so lowering finds it in this scope's map
                out.append((f.name, f.default))
            else:
                self.sink.error(
                    ErrorCode.MISSING_FIELD,
                    f"{what} does not fill field `{f.name}` of `{schema.name} v{schema.version}`",
                    span,
                    help_(f"add `{f.name} = ...;` or give the field a default in the schema"),
                )
                ok = False
        return out if ok else None

    # -- limits -----------------------------------------------------------------------------------
    def _check_limit(
        self,
        item: ast.Limit,
        plan: CheckedPlan,
        objects: dict[str, CheckedObject],
        families: dict[str, ast.LocalProblem],
        named: dict[str, ast.Item],
    ) -> None:
        tgt = self._lookup_item(item.target, item.target_span, named, ast.SharedVariables, "SharedVariables block", ErrorCode.CONSENSUS)
        if tgt is None:
            return
        shared = plan.shared.get(item.target)
        if shared is None:
            return
        for index in self._members(item):
            fam_scope = Scope()
            limit = item.name
            if item.family is not None and index is not None:
                fam_scope.define(IndexSymbol(item.family.index, index, item.family.span))
                limit = member_name(item.name, index)
            for position, c in enumerate(item.constraints):
                if _is_coupling(c):
                    self._coupling(limit, f"{limit}#{position}", c, shared, plan, fam_scope, named)
                else:
                    self._consensus(item, c, shared, objects, families, fam_scope, named)

    def _consensus(
        self,
        item: ast.Limit,
        c: ast.Constraint,
        shared: CheckedShared,
        objects: dict[str, CheckedObject],
        families: dict[str, ast.LocalProblem],
        fam_scope: Scope,
        named: dict[str, ast.Item],
    ) -> None:
        if c.op != "==":
            self.sink.error(
                ErrorCode.CONSENSUS,
                f"a consensus limit equates local and shared variables; `{c.op}` is not allowed here",
                c.span,
                help_("write `site[*].w == model.w;`, or use `sum(m.field, ...) <= capacity;` for a coupling"),
            )
            return
        for local_e, shared_e in ((c.left, c.right), (c.right, c.left)):
            if _looks_local(local_e, shared.name) and _looks_shared(shared_e, shared.name):
                break
        else:
            self.sink.error(
                ErrorCode.CONSENSUS,
                "a Limit constraint must be a consensus `object.var == shared_var` or a coupling `sum(m.field, ...) <= c`",
                c.span,
                note("consensus links whole variables: slices and expressions are not allowed on either side"),
            )
            return
        left = self._local_side(local_e, objects, families, fam_scope, named, shared)
        right = self._shared_side(shared_e, shared)
        if left is None or right is None:
            return
        shared_var, shape = right
        for obj, var_name, var_span in left:
            sym = obj.scope.lookup(var_name)
            if not isinstance(sym, VarSymbol):
                cands = [v.name for v in obj.vars]
                if sym is None:
                    self.sink.error(ErrorCode.UNKNOWN_NAME, f"`{obj.name}` has no variable `{var_name}`", var_span, *self._dym(var_name, cands))
                else:
                    self.sink.error(ErrorCode.CONSENSUS, f"`{obj.name}.{var_name}` is a param; consensus needs a variable", var_span)
                return
            if tuple(sym.shape) != tuple(shape):
                self.sink.error(
                    ErrorCode.CONSENSUS,
                    f"`{obj.name}.{var_name}` has shape {_shape_str(sym.shape)} but `{shared.name}.{shared_var}` has shape {_shape_str(shape)}",
                    c.span,
                )
                return
            key = (obj.name, var_name, shared.name, shared_var)
            if key in self._links:
                self.sink.error(
                    ErrorCode.DUPLICATE,
                    f"`{obj.name}.{var_name} == {shared.name}.{shared_var}` is stated twice",
                    c.span,
                    help_("remove the repeated consensus constraint (one link per variable pair)"),
                )
                return
            self._links.add(key)
            self._plan.consensus.append(ConsensusLink(item.name, obj, var_name, shared, shared_var, tuple(shape)))

    def _local_side(
        self,
        e: ast.Expr,
        objects: dict[str, CheckedObject],
        families: dict[str, ast.LocalProblem],
        fam_scope: Scope,
        named: dict[str, ast.Item],
        shared: CheckedShared,
    ) -> list[tuple[CheckedObject, str, Span]] | None:
        """The (object, var) pairs of a consensus limit's local side; None after a reported error.

        Called only on a side that `_looks_local` accepted, so every failure here is the user's to see.
        """
        assert isinstance(e, ast.Attr)
        base = e.base
        if isinstance(base, ast.Name):
            item = named.get(base.name)
            if item is None:
                self.sink.error(ErrorCode.UNKNOWN_NAME, f"unknown LocalProblem `{base.name}`", base.span,
                                *self._dym(base.name, [n for n, i in named.items() if isinstance(i, ast.LocalProblem)]))
                return None
            if not isinstance(item, ast.LocalProblem):
                self.sink.error(ErrorCode.CONSENSUS, f"`{base.name}` is a {_kind(item)}, not a LocalProblem", base.span)
                return None
            if item.family is not None:
                self.sink.error(ErrorCode.CONSENSUS, f"`{base.name}` is a family: write `{base.name}[*].{e.name}` or `{base.name}[i].{e.name}`", base.span)
                return None
            obj = objects.get(base.name)
            return [(obj, e.name, e.name_span)] if obj is not None else []
        assert isinstance(base, ast.Index) and isinstance(base.base, ast.Name)
        fam = families.get(base.base.name)
        if fam is None or fam.family is None:
            if named.get(base.base.name) is None:
                self.sink.error(ErrorCode.UNKNOWN_NAME, f"unknown LocalProblem family `{base.base.name}`", base.base.span, *self._dym(base.base.name, families))
            else:
                self.sink.error(ErrorCode.CONSENSUS, f"`{base.base.name}` is not a LocalProblem family", base.base.span)
            return None
        sub = base.subscripts[0]
        if isinstance(sub, ast.Star):
            idxs = list(fam.family.members)
        else:
            value = eval_const(sub, fam_scope, self.ctx, self.sink)  # type: ignore[arg-type]
            if value is None:
                return None
            k = int(np.asarray(value))
            if k not in fam.family.members:
                self.sink.error(ErrorCode.INDEX, f"`{fam.name}[{k}]` is out of range: members are {fam.family.start}..{fam.family.stop}", base.span)
                return None
            idxs = [k]
        return [(objects[member_name(fam.name, k)], e.name, e.name_span) for k in idxs if member_name(fam.name, k) in objects]

    def _shared_side(self, e: ast.Expr, shared: CheckedShared) -> tuple[str, tuple[int, ...]] | None:
        """(shared var, shape) of a consensus limit's shared side; None after a reported error."""
        if isinstance(e, ast.Attr):
            name, span = e.name, e.name_span
        else:
            assert isinstance(e, ast.Name)
            name, span = e.name, e.span
        sym = shared.scope.lookup(name)
        if not isinstance(sym, VarSymbol):
            if sym is None:
                self.sink.error(ErrorCode.UNKNOWN_NAME, f"`{shared.name}` has no variable `{name}`", span, *self._dym(name, [v.name for v in shared.vars]))
            else:
                self.sink.error(ErrorCode.CONSENSUS, f"`{shared.name}.{name}` is a param; consensus needs a shared variable", span)
            return None
        return name, tuple(sym.shape)

    def _coupling(
        self,
        limit: str,
        ident: str,
        c: ast.Constraint,
        shared: CheckedShared,
        plan: CheckedPlan,
        fam_scope: Scope,
        named: dict[str, ast.Item],
    ) -> None:
        call, rhs, sense = (c.left, c.right, c.op) if _is_sum_of_fields(c.left) else (c.right, c.left, _flip(c.op))
        assert isinstance(call, ast.Call)
        terms: list[CouplingTerm] = []
        ok = True
        for arg in call.args:
            assert isinstance(arg, ast.Attr)
            matched = self._coupling_terms(arg, shared, plan, named, fam_scope)
            if matched is None:
                ok = False
                continue
            terms.extend(matched)
        if not ok:
            return
        if not terms:
            self.sink.error(ErrorCode.COUPLING, f"no morphism into `{shared.name}` carries this field", _expr_span(call))
            return
        shapes = {tuple(_field(t.morphism.schema, t.field).type.dims) for t in terms}
        if len(shapes) > 1:
            self.sink.error(
                ErrorCode.COUPLING,
                "the summed fields have different shapes: " + ", ".join(_shape_str(s) for s in sorted(shapes)),
                _expr_span(call),
            )
            return
        shape = shapes.pop()
        if any(isinstance(shared.scope.lookup(n), ParamSymbol) and shared.scope.lookup(n).value is None for n in _names_in(rhs)):  # type: ignore[union-attr]
            return  # a param that failed to evaluate: already reported
        # A Limit family's right side may use its index (`caps[i]`): the index sits over the block.
        rhs_scope = Scope(shared.scope)
        for name in _names_in(rhs):
            sym = fam_scope.lookup(name)
            if isinstance(sym, IndexSymbol):
                rhs_scope.define(sym)
        typer = make_checker(rhs_scope, self.ctx, self.sink)
        rt = typer.type(rhs)
        if rt is None:
            return
        if rt.const is None:
            self.sink.error(
                ErrorCode.COUPLING,
                "the right side of a coupling limit must be a constant (a shared param or a literal)",
                _expr_span(rhs),
            )
            return
        value = np.asarray(rt.const, dtype=np.float64)
        if value.shape not in ((), shape):
            self.sink.error(
                ErrorCode.COUPLING,
                f"the summed fields have shape {_shape_str(shape)} but the right side has shape {_shape_str(value.shape)}",
                _expr_span(rhs),
            )
            return
        rhs_full = np.broadcast_to(value, shape).astype(np.float64).reshape(-1)
        self._plan.couplings.append(
            CouplingLimit(ident, limit, shared, sense, rhs_full, shape, terms, rhs, rhs_scope, typer.type_map())
        )

    def _coupling_terms(self, arg: ast.Attr, shared: CheckedShared, plan: CheckedPlan, named: dict[str, ast.Item], fam_scope: Scope) -> list[CouplingTerm] | None:
        base, fname = arg.base, arg.name
        into = [m for m in plan.morphisms if m.target is shared]
        if isinstance(base, ast.Star):
            found = [CouplingTerm(m, fname) for m in into if any(f.name == fname for f in m.schema.fields)]
            if not found and shared.name in self._broken_into:
                return None  # the field belongs to a morphism that failed to check (reported there)
            if not found:
                self.sink.error(
                    ErrorCode.COUPLING,
                    f"no morphism into `{shared.name}` has a field `{fname}`",
                    arg.span,
                    *self._dym(fname, {f.name for m in into for f in m.schema.fields}),
                )
                return None
            return found
        mname: str | None = None
        sel: list[int] | None = None
        if isinstance(base, ast.Name):
            mname = base.name
        elif isinstance(base, ast.Index) and isinstance(base.base, ast.Name) and len(base.subscripts) == 1:
            mname = base.base.name
            sub = base.subscripts[0]
            if not isinstance(sub, ast.Star):
                value = eval_const(sub, fam_scope, self.ctx, self.sink)  # type: ignore[arg-type]
                if value is None:
                    return None
                sel = [int(np.asarray(value))]
        if mname is None:
            self.sink.error(ErrorCode.COUPLING, "expected `morphism.field`, `morphism[*].field` or `*.field`", arg.span)
            return None
        decl = self._lookup_item(mname, _expr_span(base), named, ast.Morphism, "Morphism", ErrorCode.COUPLING)
        if decl is None:
            return None
        assert isinstance(decl, ast.Morphism)
        ms = [m for m in plan.morphisms if m.decl is decl and (sel is None or m.index in sel)]
        if not ms:
            return None  # the morphism itself failed to check (already reported)
        out = []
        for m in ms:
            if m.target is not shared:
                self.sink.error(ErrorCode.COUPLING, f"morphism `{m.name}` goes into `{m.target.name}`, not `{shared.name}`", arg.span)
                return None
            if not any(f.name == fname for f in m.schema.fields):
                self.sink.error(
                    ErrorCode.UNKNOWN_FIELD,
                    f"morphism `{decl.name}` carries `{m.schema.name} v{m.schema.version}`, which has no field `{fname}`",
                    arg.name_span,
                    *self._dym(fname, [f.name for f in m.schema.fields]),
                )
                return None
            out.append(CouplingTerm(m, fname))
        return out

    # -- colimit ----------------------------------------------------------------------------------
    def _check_colimit(self, item: ast.Colimit, plan: CheckedPlan, named: dict[str, ast.Item]) -> None:
        if plan.colimit is not None:
            self.sink.error(ErrorCode.COLIMIT, "a plan has at most one Colimit", item.name_span, note("the first one", plan.colimit.name_span))
            return
        ok = True
        seen = set()
        for ref in item.objects:
            if ref.name in seen:
                self.sink.error(ErrorCode.DUPLICATE, f"`{ref.name}` is listed twice", ref.span)
                ok = False
            seen.add(ref.name)
            if self._lookup_item(ref.name, ref.span, named, ast.SharedVariables, "SharedVariables block", ErrorCode.COLIMIT) is None:
                ok = False
        if ok:
            plan.colimit = item

    # -- deltas -----------------------------------------------------------------------------------
    def _check_deltas(self, deltas: Sequence[ast.PlanDelta], plan: CheckedPlan) -> None:
        """Check each PlanDelta while the plans they yield stay within MAX_DELTA_OBJECTS in total.

        Each delta yields a whole plan, which is checked, lowered and generated in full, so N deltas
        of a plan of M objects cost N x M: the total is bounded before each delta is checked.
        """
        total = 0
        for k, delta in enumerate(deltas):
            if total + self.expanded > limits.MAX_DELTA_OBJECTS:
                rest = len(deltas) - k
                self.sink.error(
                    ErrorCode.LIMIT,
                    f"the plans that PlanDeltas yield would hold more than {limits.MAX_DELTA_OBJECTS:,} "
                    f"objects, morphisms and limits in total",
                    delta.name_span,
                    note(f"each PlanDelta yields a whole plan of about {self.expanded:,}; "
                         f"this delta and {rest - 1} more are not checked"),
                    help_("split the deltas over several specs, or make the plan smaller"),
                )
                return
            checked, size = self._check_delta(delta, plan)
            plan.deltas.append(checked)
            total += size

    def _check_delta(self, delta: ast.PlanDelta, base: CheckedPlan) -> tuple[CheckedDelta, int]:
        items: list[ast.Item] = [i for i in base.items if not isinstance(i, ast.PlanDelta)]
        summary: list[str] = []
        ok = True
        for op in delta.ops:
            result = self._apply_op(delta, op, items)
            if result is None:
                ok = False
            else:
                items, text = result
                summary.append(text)
        if not ok:
            return CheckedDelta(delta.name, delta, summary, None), 0
        inner = self.sink.child()
        sub = Checker(self.ctx, inner, self.file)
        result_plan = sub.check(items, with_deltas=False)
        for d in inner.sorted():
            self.sink.report(
                ErrorCode.DELTA if d.severity.value == "error" else d.code,
                f"applying PlanDelta `{delta.name}` gives an invalid plan: {d.message} [{d.code.value}]",
                d.span,
                *d.notes,
                note(f"in the plan that `{delta.name}` yields", delta.name_span),
                severity=d.severity,
            )
        return CheckedDelta(delta.name, delta, summary, None if inner.has_errors else result_plan), sub.expanded

    def _apply_op(self, delta: ast.PlanDelta, op: ast.DeltaOp, items: list[ast.Item]) -> tuple[list[ast.Item], str] | None:
        if isinstance(op, ast.AddItem):
            return items + [op.item], f"add {_kind(op.item)} {op.item.name}"
        if isinstance(op, ast.RemoveItem):
            kinds = {"LocalProblem": ast.LocalProblem, "Morphism": ast.Morphism, "Limit": ast.Limit}
            want = kinds[op.kind]
            target = next((i for i in items if isinstance(i, want) and i.name == op.name), None)
            if target is None:
                self.sink.error(
                    ErrorCode.DELTA,
                    f"PlanDelta `{delta.name}` removes {op.kind} `{op.name}`, which the plan does not have",
                    op.name_span,
                    *self._dym(op.name, [i.name for i in items if isinstance(i, want)]),
                )
                return None
            return _remove(items, target), f"remove {op.kind} {op.name}"
        if isinstance(op, ast.SetParam):
            for pos, i in enumerate(items):
                if isinstance(i, (ast.LocalProblem, ast.SharedVariables)) and i.name == op.object:
                    params = list(i.body.params)
                    for k, p in enumerate(params):
                        if p.name == op.param:
                            params[k] = ast.ParamDecl(p.name, p.type, op.value, op.span, p.name_span)
                            new_body = replace(i.body, params=tuple(params))
                            new_item = _replace_body(i, new_body)
                            return items[:pos] + [new_item] + items[pos + 1:], f"set {op.object}.{op.param}"
                    self.sink.error(
                        ErrorCode.DELTA,
                        f"PlanDelta `{delta.name}` sets `{op.object}.{op.param}`, but `{op.object}` has no param `{op.param}`",
                        op.target_span,
                        *self._dym(op.param, [p.name for p in i.body.params]),
                    )
                    return None
            self.sink.error(
                ErrorCode.DELTA,
                f"PlanDelta `{delta.name}` sets a param of `{op.object}`, which is not an object of the plan",
                op.target_span,
                *self._dym(op.object, [i.name for i in items if isinstance(i, (ast.LocalProblem, ast.SharedVariables))]),
            )
            return None
        if isinstance(op, ast.Migrate):
            for pos, i in enumerate(items):
                if isinstance(i, ast.Morphism) and i.name == op.morphism:
                    maps = {m.field: m for m in i.mappings}
                    for m in op.mappings:
                        maps[m.field] = m
                    new = ast.Morphism(
                        i.name, i.family, i.source, i.target, i.target_span, op.schema, op.version, op.span,
                        tuple(maps.values()), i.span, i.name_span,
                    )
                    return items[:pos] + [new] + items[pos + 1:], f"migrate {op.morphism} to {op.schema} v{op.version}"
            self.sink.error(
                ErrorCode.DELTA,
                f"PlanDelta `{delta.name}` migrates Morphism `{op.morphism}`, which the plan does not have",
                op.name_span,
                *self._dym(op.morphism, [i.name for i in items if isinstance(i, ast.Morphism)]),
            )
            return None
        raise AssertionError(op)  # pragma: no cover

    # -- warnings ---------------------------------------------------------------------------------
    def _warn_unlinked(self, plan: CheckedPlan) -> None:
        linked = {(l.shared.name, l.shared_var) for l in plan.consensus}
        for s in plan.shared.values():
            for v in s.vars:
                if (s.name, v.name) not in linked:
                    self.sink.warning(
                        ErrorCode.CONSENSUS,
                        f"shared variable `{s.name}.{v.name}` is not linked to any local variable by a Limit",
                        v.span,
                    )

    def _warn_unused(self, items: Sequence[ast.Item], plan: CheckedPlan) -> None:
        """Params nothing reads, vars nothing uses, Functors no object takes: legal, but almost
        always a typo or a leftover (one warning per declaration, not per family member)."""
        used_by: dict[str, set[str]] = {}  # item name -> names its expressions read
        for item in items:
            body = getattr(item, "body", None)
            if body is None:
                continue
            names = used_by.setdefault(item.name, set())
            for e in [*(o.expr for o in body.objectives), *(c.left for c in body.constraints), *(c.right for c in body.constraints)]:
                names.update(_names_in(e))
            for p in body.params:
                if p.value is not None:
                    names.update(_names_in(p.value))
        for item in items:
            if isinstance(item, ast.Morphism):
                used_by.setdefault(item.source.name, set()).update(n for m in item.mappings for n in _names_in(m.expr))
            elif isinstance(item, ast.Limit):
                for c in item.constraints:
                    used_by.setdefault(item.target, set()).update([*_names_in(c.left), *_names_in(c.right)])
            elif isinstance(item, ast.Functor):
                for o in items:
                    if isinstance(o, ast.LocalProblem) and item.source in (o.adapter, o.platform):
                        used_by.setdefault(o.name, set()).update(n for r in item.rules for n in _names_in(r.expr))
        for link in plan.consensus:
            used_by.setdefault(link.object.decl.name, set()).add(link.var)
        for item in items:
            body = getattr(item, "body", None)
            if body is None or not isinstance(item, (ast.LocalProblem, ast.SharedVariables)):
                continue
            names = used_by.get(item.name, set())
            for p in body.params:
                if p.name not in names:
                    self.sink.warning(
                        ErrorCode.UNUSED_PARAM,
                        f"param `{p.name}` of `{item.name}` is never read",
                        p.name_span,
                        help_("remove it, or use it in the objective, a constraint or a morphism field"),
                    )
            if isinstance(item, ast.LocalProblem) and not body.externals:  # an external loss reads every var
                for v in body.vars:
                    if v.name not in names:
                        self.sink.warning(
                            ErrorCode.FREE_VAR,
                            f"variable `{v.name}` of `{item.name}` appears in no objective, constraint, "
                            "morphism field or consensus link: any value is optimal",
                            v.name_span,
                        )
        for item in items:
            if isinstance(item, ast.Functor) and not any(
                isinstance(o, ast.LocalProblem) and item.source in (o.adapter, o.platform) for o in items
            ):
                self.sink.warning(
                    ErrorCode.FUNCTOR,
                    f"Functor `{item.name}` maps `{item.source}`, but no LocalProblem is `on {item.source}` "
                    f"or `via {item.source}`: it applies to nothing",
                    item.source_span,
                )

    # The plan under construction, for limit helpers (set in check()).
    @property
    def _plan(self) -> CheckedPlan:
        return self._current

    _current: CheckedPlan


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _kind(item: object) -> str:
    return {
        ast.Schema: "schema",
        ast.SharedVariables: "SharedVariables block",
        ast.LocalProblem: "LocalProblem",
        ast.Morphism: "Morphism",
        ast.Limit: "Limit",
        ast.Colimit: "Colimit",
        ast.Functor: "Functor",
        ast.PlanDelta: "PlanDelta",
    }.get(type(item), type(item).__name__)


def _type_str(t: ast.TypeRef) -> str:
    return t.base + (f"[{', '.join(str(d) for d in t.dims)}]" if t.dims else "")


def _shape_str(shape: Sequence[int]) -> str:
    return "scalar" if len(shape) == 0 else "[" + ", ".join(str(d) for d in shape) + "]"


def _expr_span(e: object) -> Span:
    return e.span  # type: ignore[attr-defined,no-any-return]


def _field(schema: ast.Schema, name: str) -> ast.SchemaField:
    return next(f for f in schema.fields if f.name == name)


def _looks_local(e: ast.Expr, shared: str) -> bool:
    if not isinstance(e, ast.Attr):
        return False
    b = e.base
    if isinstance(b, ast.Name):
        return b.name != shared
    return isinstance(b, ast.Index) and isinstance(b.base, ast.Name) and len(b.subscripts) == 1


def _looks_shared(e: ast.Expr, shared: str) -> bool:
    return isinstance(e, ast.Name) or (isinstance(e, ast.Attr) and isinstance(e.base, ast.Name) and e.base.name == shared)


def _flip(op: str) -> str:
    return {"<=": ">=", ">=": "<=", "==": "=="}[op]


def _is_sum_of_fields(e: ast.Expr) -> bool:
    return isinstance(e, ast.Call) and e.func == "sum" and bool(e.args) and all(isinstance(a, ast.Attr) for a in e.args)


def _is_coupling(c: ast.Constraint) -> bool:
    return _is_sum_of_fields(c.left) or _is_sum_of_fields(c.right)


def _defined_here(scope: Scope, name: str) -> bool:
    return name in scope._symbols  # this level only: a param may shadow nothing but the family index


def _names_in(e: ast.Expr) -> list[str]:
    out: list[str] = []
    stack: list[object] = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            out.append(n.name)
        elif isinstance(n, ast.BinOp):
            stack += [n.left, n.right]
        elif isinstance(n, ast.UnaryOp):
            stack.append(n.operand)
        elif isinstance(n, ast.Call):
            stack += list(n.args)
        elif isinstance(n, ast.Index):
            stack.append(n.base)
            stack += [s for s in n.subscripts if not isinstance(s, (ast.Slice, ast.Star))]
        elif isinstance(n, ast.Transpose):
            stack.append(n.operand)
        elif isinstance(n, ast.ArrayLit):
            stack += list(n.elements)
    return out


def _remove(items: list[ast.Item], target: ast.Item) -> list[ast.Item]:
    """Remove an item; removing a LocalProblem also drops its morphisms and the limit terms naming them."""
    out = [i for i in items if i is not target]
    if isinstance(target, ast.LocalProblem):
        gone = {i.name for i in out if isinstance(i, ast.Morphism) and i.source.name == target.name}
        out = [i for i in out if not (isinstance(i, ast.Morphism) and i.name in gone)]
        out = [_drop_refs(i, target.name, gone) if isinstance(i, ast.Limit) else i for i in out]
    elif isinstance(target, ast.Morphism):
        out = [_drop_refs(i, None, {target.name}) if isinstance(i, ast.Limit) else i for i in out]
    return out


def _drop_refs(limit: ast.Limit, obj: str | None, morphisms: set[str]) -> ast.Limit:
    def names_obj(e: ast.Expr) -> bool:
        return obj is not None and isinstance(e, ast.Attr) and isinstance(e.base, ast.Name) and e.base.name == obj

    def arg_gone(a: ast.Expr) -> bool:
        if not isinstance(a, ast.Attr):
            return False
        b = a.base.base if isinstance(a.base, ast.Index) else a.base
        return isinstance(b, ast.Name) and b.name in morphisms

    cons: list[ast.Constraint] = []
    for c in limit.constraints:
        if names_obj(c.left) or names_obj(c.right):
            continue
        if _is_coupling(c):
            call = c.left if _is_sum_of_fields(c.left) else c.right
            assert isinstance(call, ast.Call)
            args = tuple(a for a in call.args if not arg_gone(a))
            if not args:
                continue
            new_call = ast.Call(call.func, call.func_span, args, call.span)
            c = ast.Constraint(new_call, c.op, c.right, c.span) if call is c.left else ast.Constraint(c.left, c.op, new_call, c.span)
        cons.append(c)
    return ast.Limit(limit.name, limit.family, limit.target, limit.target_span, tuple(cons), limit.span, limit.name_span)


def _replace_body(item: ast.LocalProblem | ast.SharedVariables, body: ast.Body) -> ast.Item:
    if isinstance(item, ast.LocalProblem):
        return replace(item, body=body)
    return ast.SharedVariables(item.name, body, item.span, item.name_span)
