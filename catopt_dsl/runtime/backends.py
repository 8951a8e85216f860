"""The one registry of solve backends: the CLI, :class:`PlanSession`, :func:`apply_delta` and the
generated Python packages all dispatch through :func:`solve_with`, so they offer the same
backends with the same meaning.

=============  ===============================================================================
backend        what runs
=============  ===============================================================================
inprocess      the reference ADMM in this process (``catopt_dsl.solver.solve``)
distributed    the same ADMM over the delta-sync protocol, every node in this process
ray            the same ADMM over the protocol, each node a Ray actor (the ``ray`` extra)
centralized    the whole plan as one CVXPY problem (the reference; no iterations, no warm start)
native         the plan's generated C++ solver (QP objects only), compiled once and cached,
               called through its C API (``native_backend.py``); ``RunOptions(native_lang=
               "rust")``: the generated Rust crate's C API, built as a ``cdylib``, instead
=============  ===============================================================================

Each entry imports what it needs on first use, so listing backends costs nothing.

The protocol runtimes (``distributed``, ``ray``) take :class:`RunOptions` as well: protocol
settings (quorum, staleness, timeouts), the membership policy, checkpoints, fault injection and,
for Ray, the actors' deadlines and restarts. Giving them to a backend without the protocol is an
error, as is an address to a backend that runs no cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver.result import SolveOptions, SolveResult, SolverState

__all__ = ["BACKENDS", "Backend", "ClusterConnectionError", "ProgressFn", "RunOptions", "backend_names", "solve_with"]

ProgressFn = Callable[[dict[str, float]], None]


class ClusterConnectionError(RuntimeError):
    """The cluster a run was pointed at cannot be reached or refused us (a user error, not a bug):
    a mistyped address, nothing listening, a missing auth token, or a local Ray that did not start."""


@dataclass(frozen=True)
class RunOptions:
    """What the protocol runtimes take besides the ADMM options (all optional).

    ``settings``: a :class:`~catopt_dsl.sync.protocol.SyncSettings`; ``min_members``: see
    :class:`~catopt_dsl.sync.run.DistributedSolve`; ``checkpoint`` / ``checkpoint_every`` /
    ``resume`` (a :class:`~catopt_dsl.sync.checkpoint.Checkpoint`): coordinator checkpoints;
    ``faults``: a :class:`~catopt_dsl.sync.transport.FaultPlan` or ``fault_specs``: the same
    written against object names (:mod:`catopt_dsl.sync.faults`; rehearsing failures);
    ``phase``: hears start-up steps. Ray only: ``call_timeout_s``, ``start_timeout_s``,
    ``max_restarts`` (:class:`~catopt_dsl.runtime.ray_backend.RayNodes`). ``auth``: a
    :class:`~catopt_dsl.sync.auth.RunAuth` that signs every frame (required for a plan whose spec
    names owners; the Ray actors receive their tenant's key with their node). Native only:
    ``native_lang``, the language of the generated solver (``cpp`` or ``rust``).
    """

    settings: Any = None
    min_members: int = 1
    checkpoint: Path | None = None
    checkpoint_every: int = 10
    resume: Any = None
    faults: Any = None
    fault_specs: tuple[str, ...] = ()
    phase: Callable[[str], None] | None = None
    call_timeout_s: float | None = None
    start_timeout_s: float | None = None
    max_restarts: int | None = None
    auth: Any = None
    native_lang: str = "cpp"

    def given(self) -> list[str]:
        """The protocol options set to something other than their default (phase and the native
        backend's ``native_lang`` aside)."""
        return [
            f.name for f in fields(self)
            if f.name not in ("phase", "native_lang") and getattr(self, f.name) != f.default
        ]

    def distributed_kwargs(self, assignment: Any = None) -> dict[str, Any]:
        """Keyword arguments of ``DistributedSolve``; ``fault_specs`` resolved for ``assignment``."""
        out: dict[str, Any] = {"min_members": self.min_members, "checkpoint_every": self.checkpoint_every}
        for name in ("settings", "checkpoint", "resume", "faults", "auth"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.fault_specs:
            from catopt_dsl.sync.faults import parse_faults

            if self.faults is not None:
                raise ValueError("give faults or fault_specs, not both")
            out["faults"] = parse_faults(self.fault_specs, assignment)
        return out


@dataclass(frozen=True)
class Backend:
    name: str
    description: str
    warm_starts: bool  # whether a warm start (PlanDeltas, re-solves) is used
    takes_address: bool  # whether it runs on a cluster named by an address
    protocol: bool = False  # whether it runs the delta-sync protocol (takes RunOptions)


def _inprocess(
    plan: IRPlan, options: SolveOptions | None, warm: SolverState | None, address: str | None,
    progress: ProgressFn | None, run: RunOptions,
) -> SolveResult:
    from catopt_dsl.solver import solve

    return solve(plan, options, warm_start=warm, progress=progress)


def _distributed(
    plan: IRPlan, options: SolveOptions | None, warm: SolverState | None, address: str | None,
    progress: ProgressFn | None, run: RunOptions,
) -> SolveResult:
    from catopt_dsl.sync.run import DistributedSolve, assign_nodes

    if run.resume is not None:
        warm = None  # the checkpoint is the warm start
    kwargs = run.distributed_kwargs(assign_nodes(plan))
    return DistributedSolve(plan, options, warm_start=warm, progress=progress, **kwargs).run()


def _ray(
    plan: IRPlan, options: SolveOptions | None, warm: SolverState | None, address: str | None,
    progress: ProgressFn | None, run: RunOptions,
) -> SolveResult:
    from catopt_dsl.runtime.ray_backend import DEFAULT_MAX_ACTORS, solve_on_ray
    from catopt_dsl.sync.run import assign_nodes

    if run.resume is not None:
        warm = None
    # Checked here, before Ray starts (a mistyped object is a quick user error); resolved again
    # for the node ids the run really gets, which depend on the cluster's CPUs (``actor_count``).
    kwargs: dict[str, Any] = run.distributed_kwargs(assign_nodes(plan, DEFAULT_MAX_ACTORS))
    if run.fault_specs:
        kwargs["faults"] = lambda assignment: run.distributed_kwargs(assignment)["faults"]
    for name in ("call_timeout_s", "start_timeout_s", "max_restarts"):
        if getattr(run, name) is not None:
            kwargs[name] = getattr(run, name)
    return solve_on_ray(plan, options, address=address, warm_start=warm, progress=progress, phase=run.phase, **kwargs)


def _centralized(
    plan: IRPlan, options: SolveOptions | None, warm: SolverState | None, address: str | None,
    progress: ProgressFn | None, run: RunOptions,
) -> SolveResult:
    from catopt_dsl.solver import solve_centralized

    external = [o.name for o in plan.objects if o.external is not None]
    if external:  # CVXPY cannot see a framework's loss: the answer would silently drop it
        raise ValueError(
            f"the centralized backend cannot solve {', '.join(external)}: their losses are computed by framework "
            "adapters, which only ADMM backends call (inprocess, distributed, ray)"
        )
    return solve_centralized(plan)


def _native(
    plan: IRPlan, options: SolveOptions | None, warm: SolverState | None, address: str | None,
    progress: ProgressFn | None, run: RunOptions,
) -> SolveResult:
    from catopt_dsl.runtime.native_backend import solve_native

    return solve_native(plan, options, run.native_lang)


_Solve = Callable[
    [IRPlan, "SolveOptions | None", "SolverState | None", "str | None", "ProgressFn | None", RunOptions], SolveResult
]

#: name -> (description, solve function); the order is the order users see
_TABLE: dict[str, tuple[Backend, _Solve]] = {
    "inprocess": (Backend("inprocess", "the reference ADMM in this process", True, False, False), _inprocess),
    "distributed": (
        Backend("distributed", "ADMM over the delta-sync protocol, every node in this process", True, False, True),
        _distributed,
    ),
    "ray": (Backend("ray", "ADMM over the delta-sync protocol, each node a Ray actor", True, True, True), _ray),
    "centralized": (
        Backend("centralized", "the whole plan as one CVXPY problem (the reference)", False, False, False),
        _centralized,
    ),
    "native": (
        Backend("native", "the plan's generated C++ solver, compiled and cached (QP objects only)", False, False, False),
        _native,
    ),
}

#: every backend, by name
BACKENDS: dict[str, Backend] = {name: entry[0] for name, entry in _TABLE.items()}


def backend_names() -> tuple[str, ...]:
    return tuple(_TABLE)


def solve_with(
    plan: IRPlan,
    options: SolveOptions | None = None,
    *,
    backend: str = "inprocess",
    address: str | None = None,
    warm_start: SolverState | None = None,
    progress: ProgressFn | None = None,
    run: RunOptions | None = None,
) -> SolveResult:
    """Solve ``plan`` with the named backend; ``ValueError`` for an unknown one, for an ``address``
    given to a backend that runs no cluster, or for :class:`RunOptions` given to one without the
    protocol (Ray-only options to ``distributed`` too)."""
    entry = _TABLE.get(backend)
    if entry is None:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(_TABLE)}")
    info, solve = entry
    if address is not None and not info.takes_address:
        raise ValueError(f"backend {backend!r} runs no cluster: an address is only for {', '.join(n for n, (b, _) in _TABLE.items() if b.takes_address)}")
    run = run or RunOptions()
    if run.native_lang != "cpp" and backend != "native":
        raise ValueError(f"native_lang={run.native_lang!r} only applies to the native backend")
    given = run.given()
    if given and not info.protocol:
        raise ValueError(f"backend {backend!r} does not run the delta-sync protocol: {', '.join(given)} need(s) distributed or ray")
    ray_only = [n for n in given if n in ("call_timeout_s", "start_timeout_s", "max_restarts")]
    if ray_only and not info.takes_address:
        raise ValueError(f"{', '.join(ray_only)} only apply to the ray backend")
    return solve(plan, options, warm_start if info.warm_starts else None, address, progress, run)
