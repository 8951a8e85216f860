"""Lowering: a checked plan (AST + the checker's side table) -> the IR.

Pure: reads the :class:`~catopt_dsl.check.checker.CheckedPlan`, returns a new :class:`IRPlan`.
Families are already expanded by the checker (one scope per member); here every expression is lowered
in its member's scope, `maximize` objectives are negated into minimise form, and each coupling term's
affine map ``B x + b`` is extracted exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from catopt_dsl.check.checker import CheckedObject, CheckedPlan, CheckedShared
from catopt_dsl.check.exprs import TypeMap
from catopt_dsl.check.scope import ParamSymbol, Scope, VarSymbol
from catopt_dsl.ir.affine import field_coefficients
from catopt_dsl.ir.exprs import lower_expr
from catopt_dsl.ir.model import (
    IRColimit,
    IRConsensus,
    IRConst,
    IRConstraint,
    IRCoupling,
    IRCouplingTerm,
    IRDelta,
    IRExpr,
    IRExternal,
    IRFunctor,
    IRMorphism,
    IRNeg,
    IRObject,
    IRParam,
    IRPlan,
    IRSchema,
    IRSchemaField,
    IRShared,
    IRVar,
    frozen_array,
)
from catopt_dsl.syntax import ast
from catopt_dsl.syntax.unparse import unparse

_DTYPES = {"float": "float64", "int": "int64", "bool": "bool"}


def lower_plan(checked: CheckedPlan, name: str, source: str, digest: str) -> IRPlan:
    schemas = tuple(_schema(s, checked.schema_defaults) for _, s in sorted(checked.schemas.items()))
    shared = tuple(_shared(s) for s in checked.shared.values())
    objects = tuple(_object(o) for o in checked.objects)
    morphisms = tuple(
        IRMorphism(
            m.name,
            m.source.name,
            m.target.name,
            m.schema.name,
            m.schema.version,
            tuple((f, lower_expr(e, _types(m.types), m.scope)) for f, e in m.fields),
        )
        for m in checked.morphisms
    )
    by_obj = {o.name: o for o in objects}
    consensus = tuple(
        IRConsensus(l.limit, l.object.name, l.var, l.shared.name, l.shared_var, tuple(l.shape)) for l in checked.consensus
    )
    morph_ir = {m.name: m for m in morphisms}
    couplings = []
    for c in checked.couplings:
        terms = []
        for t in c.terms:
            obj = by_obj[t.morphism.source.name]
            expr = dict(morph_ir[t.morphism.name].fields)[t.field]
            params = {p.name: p.value for p in obj.params}
            m = int(np.prod(c.shape, dtype=np.int64)) if c.shape else 1
            B, b = field_coefficients(expr, obj.vars, params, m)
            terms.append(IRCouplingTerm(t.morphism.name, obj.name, t.field, expr, frozen_array(B), frozen_array(b)))
        couplings.append(
            IRCoupling(
                c.name,
                c.shared.name,
                c.sense,
                frozen_array(c.rhs),
                tuple(c.shape),
                tuple(terms),
                limit=c.limit,
                rhs_expr=None
                if c.rhs_expr is None or c.rhs_types is None or c.rhs_scope is None
                else lower_expr(c.rhs_expr, c.rhs_types, c.rhs_scope),
            )
        )
    functors = tuple(
        IRFunctor(f.name, f.source, f.target, tuple((r.name, unparse(r.expr)) for r in f.rules)) for f in checked.functors
    )
    colimit = IRColimit(checked.colimit.name, tuple(r.name for r in checked.colimit.objects)) if checked.colimit else None
    h = hashlib.sha256(digest.encode())
    for o in objects:
        for p in o.params:
            h.update(o.name.encode() + b"." + p.name.encode() + np.ascontiguousarray(p.value).tobytes())
    for s in shared:
        for p in s.params:
            h.update(s.name.encode() + b"." + p.name.encode() + np.ascontiguousarray(p.value).tobytes())
    deltas = tuple(
        IRDelta(d.name, tuple(d.ops), lower_plan(d.result, name, source, digest + ":" + d.name))
        for d in checked.deltas
        if d.result is not None
    )
    return IRPlan(
        name=name,
        source=source,
        spec_hash=h.hexdigest(),
        schemas=schemas,
        shared=shared,
        objects=objects,
        morphisms=morphisms,
        consensus=consensus,
        couplings=tuple(couplings),
        functors=functors,
        colimit=colimit,
        deltas=deltas,
    )


def _params(syms: Sequence[ParamSymbol]) -> tuple[IRParam, ...]:
    out = []
    for p in syms:
        assert p.value is not None
        out.append(IRParam(p.name, p.dtype, tuple(p.shape), frozen_array(p.value, _DTYPES[p.dtype])))
    return tuple(out)


def _vars(syms: Sequence[VarSymbol]) -> tuple[IRVar, ...]:
    out = []
    offset = 0
    for v in syms:
        iv = IRVar(v.name, tuple(v.shape), offset)
        offset += iv.size
        out.append(iv)
    return tuple(out)


def _types(types: TypeMap | None) -> TypeMap:
    if types is None:  # pragma: no cover - the checker records one for every checked item
        raise ValueError("a checked item without its type map: lowering needs the checker's types")
    return types


def _objective(body: ast.Body, types: TypeMap, scope: Scope) -> tuple[str, IRExpr | None]:
    if not body.objectives:
        return "minimize", None
    obj = body.objectives[0]
    e = lower_expr(obj.expr, types, scope)
    if obj.sense == "maximize":
        e = IRNeg(e, ())
    return obj.sense, e


def _constraints(body: ast.Body, types: TypeMap, scope: Scope) -> tuple[IRConstraint, ...]:
    return tuple(
        IRConstraint(lower_expr(c.left, types, scope), c.op, lower_expr(c.right, types, scope)) for c in body.constraints
    )


def _object(o: CheckedObject) -> IRObject:
    types = _types(o.types)
    sense, objective = _objective(o.decl.body, types, o.scope)
    external = None
    if o.external is not None:
        # The adapter computes the whole objective; the IR expression is the constant 0 so every
        # pass that reads objectives (analysis, codegen) sees a well-formed, empty one.
        e = o.external
        external = IRExternal(
            e.adapter, e.adapter_version, e.requirement, e.reference, e.data_path, e.data, e.search_path, e.convex, e.convexity,
            e.init,
        )
        objective = IRConst(np.zeros(()), ())
    assert objective is not None
    return IRObject(
        name=o.name,
        family=o.decl.name if o.decl.family is not None else None,
        index=o.index,
        platform=o.decl.platform,
        adapter=o.decl.adapter,
        functors=tuple(o.functors),
        params=_params(o.params),
        vars=_vars(o.vars),
        sense=sense,
        objective=objective,
        constraints=_constraints(o.decl.body, types, o.scope),
        external=external,
        owner=o.decl.owner,
    )


def _shared(s: CheckedShared) -> IRShared:
    types = _types(s.types)
    _, objective = _objective(s.decl.body, types, s.scope)
    return IRShared(s.name, _params(s.params), _vars(s.vars), objective, _constraints(s.decl.body, types, s.scope))


def _schema(s: ast.Schema, defaults: Mapping[tuple[str, int, str], np.ndarray]) -> IRSchema:
    fields = []
    for f in s.fields:
        default = None
        if f.default is not None:
            value = defaults.get((s.name, s.version, f.name))  # folded by the checker
            if value is not None:
                arr = np.broadcast_to(np.asarray(value), f.type.dims).astype(_DTYPES[f.type.base])
                default = arr.tolist()
        fields.append(IRSchemaField(f.name, f.type.base, tuple(f.type.dims), default))
    return IRSchema(s.name, s.version, tuple(fields))
