"""Adapters: plug-ins that map an ML framework's or a device's own problem into a plan's canonical form.

See docs/adapters.md. The interface is in ``api.py``; discovery (entry-point group
``catopt.adapters``) in ``registry.py``; the conformance kit in ``kit.py``. The project's own
adapters (`torch`, `jax`, `cpu`, `cuda`) are registered through the same entry points as any
third party's. Names load lazily: importing this package (as ``catoptc --help`` does, for the
``adapters`` command group) loads neither numpy, torch nor JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = (
    "ADAPTER_API_VERSION",
    "Adapter",
    "AdapterError",
    "AdapterUnavailable",
    "Availability",
    "Capacity",
    "Contract",
    "DeviceDescriptor",
    "FrameworkAdapter",
    "FrameworkProblem",
    "HardwareAdapter",
    "ParamLayout",
    "ProxOptions",
    "ProxResult",
    "Quantity",
    "RecordedDevice",
    "VarSpec",
    "external_loss",
    "read_data",
    "resolve_callable",
)
_REGISTRY = ("discover", "get", "parse_requirement", "place", "resolve")
_KIT = ("ConformanceError", "KitReport", "assert_conforms", "verify")

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(_API, "catopt_dsl.adapters.api"),
    **dict.fromkeys(_REGISTRY, "catopt_dsl.adapters.registry"),
    **dict.fromkeys(_KIT, "catopt_dsl.adapters.kit"),
}

__all__ = [
    "ADAPTER_API_VERSION",
    "Adapter",
    "AdapterError",
    "AdapterUnavailable",
    "Availability",
    "Capacity",
    "ConformanceError",
    "Contract",
    "DeviceDescriptor",
    "FrameworkAdapter",
    "FrameworkProblem",
    "HardwareAdapter",
    "KitReport",
    "ParamLayout",
    "ProxOptions",
    "ProxResult",
    "Quantity",
    "RecordedDevice",
    "VarSpec",
    "assert_conforms",
    "discover",
    "external_loss",
    "get",
    "parse_requirement",
    "place",
    "read_data",
    "resolve",
    "resolve_callable",
    "verify",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'catopt_dsl.adapters' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
