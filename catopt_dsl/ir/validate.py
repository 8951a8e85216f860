"""``validate_ir``: the IR's invariants, checked once after lowering (and on every plan read back).

The checker guarantees these for plans it lowers; this pass states them in one place so that a
bug upstream (or a hand-edited ``plan.json``) fails loudly here instead of silently merging rows
downstream. The multi-coupling bug was exactly that: two coupling constraints of one Limit got one
name, and every consumer keyed rows by name.

Invariants:

* names are unique per kind: objects, shared blocks, morphisms, schemas (name + version), deltas;
* every coupling has a unique identity (``IRCoupling.name``) and every term refers to an existing
  object with ``B`` of shape ``(m, object.n)`` and ``b`` of shape ``(m,)``, m = the coupling's size;
* every consensus link refers to an existing object var and shared var of one shape, and no
  object var is linked twice to the same shared var;
* each object's vars tile its stacked vector (offsets are contiguous, in declaration order);
* every delta's resulting plan satisfies the same invariants.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import numpy as np

from catopt_dsl.ir.model import IRPlan, IRVar

__all__ = ["IRValidationError", "validate_ir"]


class IRValidationError(ValueError):
    """The IR breaks one of its invariants (a bug in catoptc or a tampered plan file)."""


def _dupes(names: Iterable[str]) -> list[str]:
    return sorted(n for n, k in Counter(names).items() if k > 1)


def _check_offsets(owner: str, vars_: tuple[IRVar, ...], problems: list[str]) -> None:
    offset = 0
    for v in vars_:
        if v.offset != offset:
            problems.append(f"`{owner}.{v.name}` starts at {v.offset}, expected {offset}")
        offset += v.size


def _problems(plan: IRPlan) -> list[str]:
    problems: list[str] = []
    for kind, names in (
        ("object", [o.name for o in plan.objects]),
        ("shared block", [s.name for s in plan.shared]),
        ("morphism", [m.name for m in plan.morphisms]),
        ("schema", [s.key for s in plan.schemas]),
        ("coupling identity", [c.name for c in plan.couplings]),
        ("delta", [d.name for d in plan.deltas]),
    ):
        for name in _dupes(names):
            problems.append(f"two {kind}s share the identity `{name}`")
    objects = {o.name: o for o in plan.objects}
    shared = {s.name: s for s in plan.shared}
    for o in plan.objects:
        _check_offsets(o.name, o.vars, problems)
    for s in plan.shared:
        _check_offsets(s.name, s.vars, problems)
    seen_links: set[tuple[str, str, str, str]] = set()
    for link in plan.consensus:
        obj, blk = objects.get(link.object), shared.get(link.shared)
        if obj is None or blk is None:
            problems.append(f"consensus link `{link.object}.{link.var} == {link.shared}.{link.shared_var}` names a missing item")
            continue
        local = {v.name: v for v in obj.vars}.get(link.var)
        target = {v.name: v for v in blk.vars}.get(link.shared_var)
        if local is None or target is None or local.shape != target.shape or tuple(link.shape) != local.shape:
            problems.append(f"consensus link `{link.object}.{link.var} == {link.shared}.{link.shared_var}` has mismatched variables")
        key = (link.object, link.var, link.shared, link.shared_var)
        if key in seen_links:
            problems.append(f"consensus link `{link.object}.{link.var} == {link.shared}.{link.shared_var}` appears twice")
        seen_links.add(key)
    for c in plan.couplings:
        if c.shared not in shared:
            problems.append(f"coupling `{c.name}` targets a missing shared block `{c.shared}`")
        if c.sense not in ("<=", ">=", "=="):
            problems.append(f"coupling `{c.name}` has sense `{c.sense}`")
        m = math.prod(c.shape) if c.shape else 1
        if np.asarray(c.rhs).shape != (m,):
            problems.append(f"coupling `{c.name}` has a right side of shape {np.asarray(c.rhs).shape}, expected ({m},)")
        for t in c.terms:
            obj = objects.get(t.object)
            if obj is None:
                problems.append(f"coupling `{c.name}` has a term of a missing object `{t.object}`")
                continue
            if np.asarray(t.B).shape != (m, obj.n) or np.asarray(t.b).shape != (m,):
                problems.append(
                    f"coupling `{c.name}` term `{t.morphism}.{t.field}` has B {np.asarray(t.B).shape} and "
                    f"b {np.asarray(t.b).shape}, expected ({m}, {obj.n}) and ({m},)"
                )
    return problems


def validate_ir(plan: IRPlan) -> IRPlan:
    """Return ``plan`` unchanged if it holds every invariant; raise :class:`IRValidationError` otherwise."""
    problems = _problems(plan)
    for d in plan.deltas:
        problems += [f"delta `{d.name}`: {p}" for p in _problems(d.result)]
    if problems:
        raise IRValidationError("invalid IR: " + "; ".join(problems))
    return plan
