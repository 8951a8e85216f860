"""Plan transforms: new plans made from a plan (pure; the IR stays immutable)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from catopt_dsl.ir.model import IRPlan

__all__ = ["restrict_plan"]


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
