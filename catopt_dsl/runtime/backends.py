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
=============  ===============================================================================

Each entry imports what it needs on first use, so listing backends costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver.result import SolveOptions, SolveResult, SolverState

__all__ = ["BACKENDS", "Backend", "ProgressFn", "backend_names", "solve_with"]

ProgressFn = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class Backend:
    name: str
    description: str
    warm_starts: bool  # whether a warm start (PlanDeltas, re-solves) is used
    takes_address: bool  # whether it runs on a cluster named by an address


def _inprocess(
    plan: IRPlan, options: SolveOptions | None, warm: SolverState | None, address: str | None, progress: ProgressFn | None
) -> SolveResult:
    from catopt_dsl.solver import solve

    return solve(plan, options, warm_start=warm, progress=progress)


def _distributed(
    plan: IRPlan, options: SolveOptions | None, warm: SolverState | None, address: str | None, progress: ProgressFn | None
) -> SolveResult:
    from catopt_dsl.sync.run import solve_distributed

    return solve_distributed(plan, options, warm_start=warm, progress=progress)


def _ray(
    plan: IRPlan, options: SolveOptions | None, warm: SolverState | None, address: str | None, progress: ProgressFn | None
) -> SolveResult:
    from catopt_dsl.runtime.ray_backend import solve_on_ray

    return solve_on_ray(plan, options, address=address, warm_start=warm)


def _centralized(
    plan: IRPlan, options: SolveOptions | None, warm: SolverState | None, address: str | None, progress: ProgressFn | None
) -> SolveResult:
    from catopt_dsl.solver import solve_centralized

    return solve_centralized(plan)


_Solve = Callable[[IRPlan, "SolveOptions | None", "SolverState | None", "str | None", "ProgressFn | None"], SolveResult]

#: name -> (description, solve function); the order is the order users see
_TABLE: dict[str, tuple[Backend, _Solve]] = {
    "inprocess": (Backend("inprocess", "the reference ADMM in this process", True, False), _inprocess),
    "distributed": (
        Backend("distributed", "ADMM over the delta-sync protocol, every node in this process", True, False),
        _distributed,
    ),
    "ray": (Backend("ray", "ADMM over the delta-sync protocol, each node a Ray actor", True, True), _ray),
    "centralized": (
        Backend("centralized", "the whole plan as one CVXPY problem (the reference)", False, False),
        _centralized,
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
) -> SolveResult:
    """Solve ``plan`` with the named backend; ``ValueError`` for an unknown one, or for an
    ``address`` given to a backend that runs no cluster."""
    entry = _TABLE.get(backend)
    if entry is None:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(_TABLE)}")
    info, solve = entry
    if address is not None and not info.takes_address:
        raise ValueError(f"backend {backend!r} runs no cluster: an address is only for {', '.join(n for n, (b, _) in _TABLE.items() if b.takes_address)}")
    return solve(plan, options, warm_start if info.warm_starts else None, address, progress)
