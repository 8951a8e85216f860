"""Base classes for the Python packages that ``catoptc compile --target python`` generates.

Generated code stays thin and readable: it declares classes with typed fields and class-level
metadata, and inherits the behaviour (coercion, wire encoding, CVXPY building, solving) from here.
"""

from __future__ import annotations

from catopt_dsl.bindings.plans import PlanBase, PlanResult, load_plan
from catopt_dsl.bindings.problems import FamilyBase, LocalProblemBase
from catopt_dsl.bindings.records import FieldSpec, Record, array_default
from catopt_dsl.ir.model import IRPlan

__all__ = [
    "FamilyBase",
    "FieldSpec",
    "IRPlan",
    "LocalProblemBase",
    "PlanBase",
    "PlanResult",
    "Record",
    "array_default",
    "load_plan",
]
