"""Hand-built IR plans for the backend tests (no parser or checker involved)."""

from __future__ import annotations

import math

import numpy as np

from catopt_dsl.ir.model import (
    IRBinary,
    IRCall,
    IRColimit,
    IRConst,
    IRConsensus,
    IRConstraint,
    IRCoupling,
    IRCouplingTerm,
    IRDelta,
    IRFunctor,
    IRIndex,
    IRMorphism,
    IRNeg,
    IRObject,
    IRParam,
    IRParamRef,
    IRPlan,
    IRSchema,
    IRSchemaField,
    IRShared,
    IRStack,
    IRTranspose,
    IRVar,
    IRVarRef,
    frozen_array,
)

HASH = "ab" * 32


def _param(name: str, value: object, dtype: str = "float") -> IRParam:
    np_dtype = {"float": "float64", "int": "int64", "bool": "bool"}[dtype]
    arr = frozen_array(value, np_dtype)
    return IRParam(name, dtype, tuple(arr.shape), arr)


def _lsq_object(name: str, demand: list[float], *, var: str = "x", param: str = "demand",
                family: str | None = None, index: int | None = None,
                platform: str | None = None) -> IRObject:
    """minimize sum_squares(x - demand) s.t. x >= 0."""
    n = len(demand)
    x = IRVarRef(var, (n,))
    d = IRParamRef(param, (n,))
    obj = IRCall("sum_squares", (IRBinary("-", x, d, (n,)),), ())
    return IRObject(
        name=name, family=family, index=index, platform=platform, adapter=None, functors=(),
        params=(_param(param, demand),), vars=(IRVar(var, (n,), 0),), sense="minimize",
        objective=obj, constraints=(IRConstraint(x, ">=", IRConst(frozen_array(0.0), ())),),
    )


SCHEMAS = (
    IRSchema("Allocation", 1, (IRSchemaField("hours", "float", ()),)),
    IRSchema(
        "Allocation",
        2,
        (
            IRSchemaField("hours", "float", ()),
            IRSchemaField("usage", "float", (3,), default=[0.0, 0.5, float("nan")]),
            IRSchemaField("active", "bool", (), default=True),
            IRSchemaField("slots", "int", (2, 2), default=[[1, 2], [3, 4]]),
            IRSchemaField("weights", "float", (2,), default=0.25),
        ),
    ),
)


def consensus_plan() -> IRPlan:
    """Two tenants agree on a shared z (3,): the optimum is the mean demand, clipped at 0."""
    a = _lsq_object("tenant_a", [1.0, 2.0, -3.0], platform="gpu")
    b = _lsq_object("tenantB", [3.0, 0.0, 1.0])
    hub = IRShared("hub", (), (IRVar("z", (3,), 0),), None, ())
    morph = IRMorphism("a_usage", "tenant_a", "hub", "Allocation", 2,
                       (("usage", IRVarRef("x", (3,))),))
    return IRPlan(
        name="consensus_demo", source="specs/consensus_demo.cat", spec_hash=HASH,
        schemas=SCHEMAS, shared=(hub,), objects=(a, b), morphisms=(morph,),
        consensus=(IRConsensus("agree", "tenant_a", "x", "hub", "z", (3,)),
                   IRConsensus("agree", "tenantB", "x", "hub", "z", (3,))),
        couplings=(), functors=(IRFunctor("scale", "tenant_a", "tenantB", (("demand", "2 * demand"),)),),
        colimit=IRColimit("all", ("hub",)),
    )


def _sharing_objects(n_sites: int) -> tuple[IRObject, ...]:
    return tuple(
        _lsq_object(f"site[{i}]", [float(i + 1), 2.0], var="w", param="target", family="site", index=i)
        for i in range(n_sites)
    )


def _sharing(name: str, objects: tuple[IRObject, ...], deltas: tuple[IRDelta, ...] = ()) -> IRPlan:
    terms = tuple(
        IRCouplingTerm(f"use[{o.index}]" if o.index is not None else f"use_{o.name}", o.name, "load",
                       IRVarRef("w", (2,)), frozen_array(np.eye(2)), frozen_array([0.0, 0.0]))
        for o in objects
    )
    cap = IRCoupling("capacity", "pool", "<=", frozen_array([4.0, math.inf]), (2,), terms)
    pool = IRShared("pool", (_param("cap", [4.0, 4.0]),), (), None, ())
    return IRPlan(
        name=name, source="sharing_demo.cat", spec_hash=HASH, schemas=(), shared=(pool,),
        objects=objects, morphisms=(), consensus=(), couplings=(cap,), functors=(), colimit=None,
        deltas=deltas,
    )


def sharing_plan() -> IRPlan:
    """A family site[0..2] shares a capacity; the delta adds tenant_d (also a nested delta)."""
    grown = _sharing_objects(3) + (_lsq_object("tenant_d", [1.0, 1.0], var="w", param="target"),)
    shrunk = _sharing_objects(2) + (grown[-1],)
    inner = IRDelta("site_leaves", ("remove LocalProblem site[2]",), _sharing("sharing_demo", shrunk))
    delta = IRDelta("tenant_d_joins", ("add LocalProblem tenant_d",),
                    _sharing("sharing_demo", grown, (inner,)))
    return _sharing("sharing_demo", _sharing_objects(3), (delta,))


KEYWORDS = ("type", "match", "class", "None", "lambda", "in", "is", "not", "and", "or", "yield",
            "async", "default")


def keyword_plan() -> IRPlan:
    """Every name is a Python keyword (or soft keyword / builtin)."""
    objs = []
    for i, kw in enumerate(("type", "match", "class", "None", "lambda", "in")):
        params = tuple(_param(p, [float(i), 1.0]) for p in ("is", "not", "and", "or", "yield", "async", "default"))
        x = IRVarRef("async", (2,))
        objective = IRCall("sum_squares", (IRBinary("-", x, IRParamRef("yield", (2,)), (2,)),), ())
        objs.append(IRObject(kw, None, None, None, None, (), params, (IRVar("async", (2,), 0),),
                             "minimize", objective, ()))
    schema = IRSchema("type", 1, tuple(IRSchemaField(k, "float", (), default=1.0) for k in KEYWORDS))
    base = IRPlan(name="class", source="class.cat", spec_hash=HASH, schemas=(schema,), shared=(),
                  objects=tuple(objs), morphisms=(), consensus=(), couplings=(), functors=(), colimit=None)
    return IRPlan(**{**base.__dict__, "deltas": (IRDelta("yield", ("remove LocalProblem in",),
                                                         IRPlan(**{**base.__dict__, "objects": tuple(objs[:-1])})),)})


def expression_zoo_plan() -> IRPlan:
    """One object using every IR expression node, for serialisation round trips."""
    x = IRVarRef("x", (2, 3))
    A = IRParamRef("A", (3, 2))
    const = IRConst(frozen_array([[1.0, math.nan], [math.inf, -math.inf]]), (2, 2))
    expr = IRCall(
        "sum",
        (
            IRBinary(
                "+",
                IRBinary("@", x, A, (2, 2)),
                IRNeg(IRTranspose(IRBinary("*", const, IRConst(frozen_array(2), ()), (2, 2)), (2, 2)), (2, 2)),
                (2, 2),
            ),
        ),
        (),
        (("axis", None), ("M", 1.5), ("weights", (1, 2.5, float("nan"))), ("tag", "nan")),
    )
    idx = IRIndex(x, (1, (0, 3, 2)), (2,))
    stack = IRStack((IRIndex(x, (0, 0), ()), IRConst(frozen_array(True, "bool"), ())), (2,))
    obj = IRObject(
        "zoo", None, None, "cpu", "adapter1", ("f1",),
        (_param("A", np.arange(6.0).reshape(3, 2)), _param("k", [1, 2], "int"), _param("mask", [True, False], "bool")),
        (IRVar("x", (2, 3), 0), IRVar("t", (), 6)), "maximize", expr,
        (IRConstraint(idx, "<=", stack), IRConstraint(IRVarRef("t", ()), "==", IRConst(frozen_array(0.0), ()))),
    )
    return IRPlan(name="zoo", source="zoo.cat", spec_hash=HASH, schemas=SCHEMAS, shared=(), objects=(obj,),
                  morphisms=(), consensus=(), couplings=(), functors=(), colimit=None)
