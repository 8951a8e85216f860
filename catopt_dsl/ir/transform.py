"""Plan transforms: new plans made from a plan (pure; the IR stays immutable)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from catopt_dsl.ir.affine import field_coefficients
from catopt_dsl.ir.evaluate import evaluate
from catopt_dsl.ir.model import IRParam, IRPlan, frozen_array

__all__ = ["restrict_plan", "set_param"]

_NP = {"float": "float64", "int": "int64", "bool": "bool"}


def restrict_plan(plan: IRPlan, keep: Iterable[str]) -> IRPlan:
    """The plan with only the objects named in ``keep`` (plan order kept).

    Removes every other object with its morphisms, consensus links and coupling terms; shared
    blocks, couplings (possibly left without terms), schemas and the colimit stay. The spec hash
    is kept (it identifies the run, not the member set); deltas are dropped.
    """
    names = set(keep)
    unknown = names - {o.name for o in plan.objects}
    if unknown:
        raise KeyError(f"no such object(s): {sorted(unknown)}")
    return IRPlan(
        name=plan.name,
        source=plan.source,
        spec_hash=plan.spec_hash,
        schemas=plan.schemas,
        shared=plan.shared,
        objects=tuple(o for o in plan.objects if o.name in names),
        morphisms=tuple(m for m in plan.morphisms if m.source in names),
        consensus=tuple(c for c in plan.consensus if c.object in names),
        couplings=tuple(replace(c, terms=tuple(t for t in c.terms if t.object in names)) for c in plan.couplings),
        functors=plan.functors,
        colimit=plan.colimit,
        deltas=(),
    )


def set_param(plan: IRPlan, owner: str, name: str, value: Any) -> IRPlan:
    """The plan with param ``owner.name`` set to ``value``, and what depends on it recomputed.

    ``owner`` is an object (a family member ``site[3]``) or a shared block. The coupling terms of
    an object (their ``B``, ``b`` from the morphism fields' expressions) and the coupling bounds
    on a shared block (from ``rhs_expr``) follow the new value; objectives and constraints refer
    to params by name and need nothing. The spec hash moves with the data (frames of the old plan
    are refused). The plan's PlanDeltas keep the values they were declared with.
    Raises ``KeyError`` for an unknown owner or param and ``ValueError`` for a value of another
    shape or one that is not finite.
    """
    objects = {o.name: o for o in plan.objects}
    blocks = {b.name: b for b in plan.shared}
    target = objects.get(owner) or blocks.get(owner)
    if target is None:
        raise KeyError(f"no object or shared block `{owner}` in plan `{plan.name}`")
    try:
        old = target.param(name)
    except KeyError:
        known = ", ".join(p.name for p in target.params) or "none"
        raise KeyError(f"`{owner}` has no param `{name}` (its params: {known})") from None
    arr = np.asarray(value)
    if arr.shape != tuple(old.shape):
        raise ValueError(f"`{owner}.{name}` has shape {tuple(old.shape)}, got a value of shape {arr.shape}")
    if old.dtype != "bool" and not np.all(np.isfinite(np.asarray(arr, dtype=np.float64))):
        raise ValueError(f"`{owner}.{name}` must be finite")
    new = IRParam(old.name, old.dtype, old.shape, frozen_array(arr, _NP[old.dtype]))
    params = tuple(new if p.name == name else p for p in target.params)
    digest = hashlib.sha256(f"{plan.spec_hash}|set {owner}.{name}|".encode())
    digest.update(np.ascontiguousarray(new.value).tobytes())
    if owner in objects:
        obj = replace(objects[owner], params=params)
        values = {p.name: np.asarray(p.value, dtype=np.float64) for p in params}
        couplings = []
        for c in plan.couplings:
            m = math.prod(c.shape) if c.shape else 1
            terms = []
            for t in c.terms:
                if t.object == owner:
                    B, b = field_coefficients(t.expr, obj.vars, values, m)
                    t = replace(t, B=frozen_array(B), b=frozen_array(b))
                terms.append(t)
            couplings.append(replace(c, terms=tuple(terms)))
        return replace(
            plan,
            spec_hash=digest.hexdigest(),
            objects=tuple(obj if o.name == owner else o for o in plan.objects),
            couplings=tuple(couplings),
        )
    block = replace(blocks[owner], params=params)
    values = {p.name: np.asarray(p.value, dtype=np.float64) for p in params}
    couplings = []
    for c in plan.couplings:
        if c.shared == owner and c.rhs_expr is not None:
            m = math.prod(c.shape) if c.shape else 1
            rhs = np.broadcast_to(np.asarray(evaluate(c.rhs_expr, {}, values), dtype=np.float64), c.shape).reshape(m)
            c = replace(c, rhs=frozen_array(rhs))
        couplings.append(c)
    return replace(
        plan,
        spec_hash=digest.hexdigest(),
        shared=tuple(block if b.name == owner else b for b in plan.shared),
        couplings=tuple(couplings),
    )
