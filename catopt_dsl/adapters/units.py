"""Canonical quantities and units: the one vocabulary every adapter maps into.

A plan mixes tenants that speak different units (GPU hours on one vendor's cards, core-hours on
another's CPUs, a loss in whatever scale a framework computes). Adapters translate into the
quantities below; Functors and coupling limits then only ever see canonical units.

Compute is normalised to a reference: **1 ncu** (normalised compute unit) is a sustained rate of
10^12 float32 operations per second on dense matrix multiplication, i.e. 1 TFLOP/s fp32. One hour
at that rate is **1 ncu_h**, the canonical "normalised compute-hour". So an NVIDIA H200
(about 67 TFLOP/s fp32 peak) offers about 67 ncu, and an 8-hour reservation of it about 536 ncu_h.
The reference is fp32 dense matmul because every device can run it and every vendor publishes it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CANONICAL", "GIB", "CanonicalQuantity", "is_canonical", "quantity"]

GIB = 1024**3


@dataclass(frozen=True)
class CanonicalQuantity:
    """One quantity of the canonical vocabulary, with its only unit."""

    name: str
    unit: str
    description: str


#: Every quantity an adapter may declare, keyed by name. A contract naming a quantity or unit that
#: is not here fails the conformance kit: a unit nobody else understands is no canonical unit.
CANONICAL: dict[str, CanonicalQuantity] = {
    q.name: q
    for q in (
        # hardware
        CanonicalQuantity("compute", "ncu", "sustained compute rate; 1 ncu = 1 TFLOP/s of fp32 dense matmul"),
        CanonicalQuantity("compute_hours", "ncu_h", "compute over time; 1 ncu_h = one hour at 1 ncu"),
        CanonicalQuantity("memory", "GiB", "device memory (2^30 bytes)"),
        CanonicalQuantity("devices", "count", "number of devices of the platform"),
        # framework
        CanonicalQuantity("params", "float64", "the tenant's parameters as one flat float64 vector (the shared vector)"),
        CanonicalQuantity("loss", "1", "the tenant's loss, a dimensionless float64 scalar"),
        CanonicalQuantity("gradient", "float64", "gradient of the loss with respect to the flat parameters"),
        CanonicalQuantity("hvp", "float64", "Hessian-vector product of the loss with respect to the flat parameters"),
    )
}


def is_canonical(name: str, unit: str) -> bool:
    """Whether ``name`` is a canonical quantity measured in ``unit``."""
    q = CANONICAL.get(name)
    return q is not None and q.unit == unit


def quantity(name: str) -> CanonicalQuantity:
    """The canonical quantity ``name`` (KeyError if there is none)."""
    return CANONICAL[name]
