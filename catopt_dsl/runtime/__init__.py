"""Running plans: the backend registry (``backends.py``), the Ray runtime (``ray_backend.py``) and
PlanDeltas at run time (``deltas.py``).

The base classes of generated Python packages live in :mod:`catopt_dsl.bindings`; packages
generated before that split import them from here, so the names stay reachable (loaded on first
use, which keeps ``import catopt_dsl.runtime`` free of the solver).
"""

from __future__ import annotations

import importlib
from typing import Any

_BINDINGS = (
    "FamilyBase",
    "FieldSpec",
    "IRPlan",
    "LocalProblemBase",
    "PlanBase",
    "PlanResult",
    "Record",
    "array_default",
    "load_plan",
)


def __getattr__(name: str) -> Any:
    if name in _BINDINGS:
        return getattr(importlib.import_module("catopt_dsl.bindings"), name)
    raise AttributeError(f"module 'catopt_dsl.runtime' has no attribute {name!r}")
