"""Adapters: plug-ins that map an ML framework's or a device's own problem into a plan's canonical form.

See docs/adapters.md. The interface is in ``api.py``; discovery (entry-point group
``catopt.adapters``) in ``registry.py``; the conformance kit in ``kit.py``. The project's own
adapters (`torch`, `jax`, `cpu`, `cuda`) are registered through the same entry points as any
third party's. Importing this package loads neither torch nor JAX.
"""

from __future__ import annotations

from catopt_dsl.adapters.api import (
    ADAPTER_API_VERSION,
    Adapter,
    AdapterError,
    AdapterUnavailable,
    Availability,
    Capacity,
    Contract,
    DeviceDescriptor,
    FrameworkAdapter,
    FrameworkProblem,
    HardwareAdapter,
    ParamLayout,
    ProxOptions,
    ProxResult,
    Quantity,
    RecordedDevice,
    VarSpec,
    external_loss,
    read_data,
    resolve_callable,
)

__all__ = [
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
]
