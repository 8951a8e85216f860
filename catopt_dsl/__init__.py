"""catopt_dsl: the catoptc compiler and runtime for distributed optimisation plans.

The public API is re-exported here. Heavy submodules (the solver imports CVXPY, the Ray runtime
imports Ray) load on first use, so `import catopt_dsl` and the `catoptc check` path stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # front end
    "analyze": "catopt_dsl.compile",
    "check_file": "catopt_dsl.compile",
    "load_plan": "catopt_dsl.compile",
    "Analysis": "catopt_dsl.compile",
    "Span": "catopt_dsl.span",
    "ErrorCode": "catopt_dsl.errors",
    "Diagnostic": "catopt_dsl.diagnostics",
    "DiagnosticSink": "catopt_dsl.diagnostics",
    "CatoptError": "catopt_dsl.diagnostics",
    "SourceMap": "catopt_dsl.diagnostics",
    "render_text": "catopt_dsl.diagnostics",
    "render_json": "catopt_dsl.diagnostics",
    "format_source": "catopt_dsl.syntax.format",
    "Formatted": "catopt_dsl.syntax.format",
    # IR
    "IRPlan": "catopt_dsl.ir.model",
    "IRObject": "catopt_dsl.ir.model",
    "IRShared": "catopt_dsl.ir.model",
    "IRSchema": "catopt_dsl.ir.model",
    "IRMorphism": "catopt_dsl.ir.model",
    "IRConsensus": "catopt_dsl.ir.model",
    "IRCoupling": "catopt_dsl.ir.model",
    "IRDelta": "catopt_dsl.ir.model",
    "plan_to_dict": "catopt_dsl.ir.serialize",
    "plan_from_dict": "catopt_dsl.ir.serialize",
    # code generation
    "emit_target": "catopt_dsl.backends.emit",
    "Namer": "catopt_dsl.backends.naming",
    # solver
    "solve": "catopt_dsl.solver",
    "solve_centralized": "catopt_dsl.solver",
    "SolveOptions": "catopt_dsl.solver",
    "SolveResult": "catopt_dsl.solver",
    "SolverState": "catopt_dsl.solver",
    # wire and sync
    "encode_record": "catopt_dsl.wire",
    "decode_record": "catopt_dsl.wire",
    "WireError": "catopt_dsl.wire",
    "solve_distributed": "catopt_dsl.sync.run",
    "FaultPlan": "catopt_dsl.sync",
    "SyncSettings": "catopt_dsl.sync",
    "DistributedSolve": "catopt_dsl.sync.run",
    "RunReport": "catopt_dsl.sync.report",
    "Checkpoint": "catopt_dsl.sync.checkpoint",
    "read_checkpoint": "catopt_dsl.sync.checkpoint",
    # schema registry
    "Registry": "catopt_dsl.registry",
    "open_registry": "catopt_dsl.registry",
    "RunAuth": "catopt_dsl.sync.auth",
    # identity and governance
    "Identity": "catopt_dsl.identity",
    "Owners": "catopt_dsl.identity",
    "validate_did": "catopt_dsl.identity",
    "resolve_did": "catopt_dsl.identity",
    "Ledger": "catopt_dsl.ledger",
    "TreeHead": "catopt_dsl.ledger",
    # runtime
    "solve_with": "catopt_dsl.runtime.backends",
    "apply_delta": "catopt_dsl.runtime.deltas",
    "PlanSession": "catopt_dsl.runtime.deltas",
    "solve_on_ray": "catopt_dsl.runtime.ray_backend",
    "ClusterConnectionError": "catopt_dsl.runtime.backends",
    "RunOptions": "catopt_dsl.runtime.backends",
    # adapters (torch and JAX load only inside their adapters)
    "Contract": "catopt_dsl.adapters.api",
    "FrameworkAdapter": "catopt_dsl.adapters.api",
    "FrameworkProblem": "catopt_dsl.adapters.api",
    "HardwareAdapter": "catopt_dsl.adapters.api",
    "ParamLayout": "catopt_dsl.adapters.api",
    "ProxResult": "catopt_dsl.adapters.api",
    "external_loss": "catopt_dsl.adapters.api",
    # demos (catoptc demo fleet / hil) and charts
    "run_fleet": "catopt_dsl.demo.fleet",
    "FleetRun": "catopt_dsl.demo.fleet",
    "run_hil": "catopt_dsl.demo.hil",
    "HilRun": "catopt_dsl.demo.hil",
    "plot_history": "catopt_dsl.plotting",
}

__all__ = ["__version__", *sorted(_EXPORTS)]  # noqa: PLE0604 (a list of str: the keys of _EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'catopt_dsl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
