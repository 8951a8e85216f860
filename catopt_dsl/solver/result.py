"""Solver options, results and warm-start state (the solver's public data types)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["RunDetails", "SolveOptions", "SolveResult", "SolverState", "STATUSES", "heuristic_message", "inaccurate_warnings", "natural_sorted"]

#: Every status a solve can end with.
STATUSES: tuple[str, ...] = (
    "optimal",
    "infeasible",
    "unbounded",
    "max_iterations",
    "local_solver_failed",
    "member_lost",
    # ADMM converged on a plan with an external loss no one declares convex: a stationary point of
    # a heuristic, never claimed optimal (docs/language.md, E0903)
    "stationary",
)


def heuristic_message(objects: list[str]) -> str:
    """Why a converged run on non-convex external losses ends ``stationary``."""
    names = ", ".join(f"`{n}`" for n in objects)
    return (
        f"ADMM converged, but the loss of {names} is not known to be convex: ADMM is then a heuristic, "
        "and the point is a stationary point of the plan, not a proven optimum"
    )


class RunDetails(Protocol):
    """What a distributed runtime attaches to its result (``catopt_dsl.sync.report.RunReport``)."""

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SolveOptions:
    """ADMM settings (defaults follow OSQP).

    ``adaptive_rho_interval`` (extra, additive): rho adaptation is considered at iterations
    1, 2, 4, ... below it, then every that many iterations. ``infeasibility_check_interval`` (extra): how often the coupling-infeasibility
    certificate is looked for.
    """

    max_iter: int = 10000
    eps_abs: float = 1e-5
    eps_rel: float = 1e-5
    rho: float = 1.0
    alpha: float = 1.6
    adaptive_rho: bool = True
    fast_path: bool = True
    verbose: bool = False
    adaptive_rho_interval: int = 10
    infeasibility_check_interval: int = 25


@dataclass
class SolverState:
    """Everything needed to warm-start a re-solve, keyed by *names* so it survives plan changes.

    ``x``: object name -> stacked x; ``z``: shared block name -> stacked z; ``duals``: row-block key
    (see ``catopt_dsl.solver.layout``) -> scaled dual u; ``targets``: coupling-term key -> its copy
    y_t; ``rho``: the penalty the duals are scaled by; ``secant``: row-block key -> the last
    iteration's rows and multiplier estimate (rho's curvature secant, ``rho.py``), so a run resumed
    from a checkpoint takes the rho decisions the uninterrupted run would have taken.
    """

    rho: float
    x: dict[str, np.ndarray] = field(default_factory=dict)
    z: dict[str, np.ndarray] = field(default_factory=dict)
    duals: dict[str, np.ndarray] = field(default_factory=dict)
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    secant: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def inaccurate_warnings(status: str, counts: Mapping[str, int], iterations: int | None) -> list[str]:
    """One warning per object (or shared block) whose CVXPY solves were flagged inaccurate.

    Dropped when the run ended ``optimal``: its residuals verified the final point, whatever an
    intermediate local solve's accuracy was.
    """
    if status == "optimal":
        return []
    out = []
    for name, count in sorted(counts.items()):
        if count > 0:
            of = f" of {iterations}" if iterations else ""
            out.append(
                f"`{name}`: its local solver reported an inaccurate solution in {count}{of} iterations; "
                "rescale its data (values near 1 solve best) or loosen --eps-abs/--eps-rel"
            )
    return out


def natural_sorted(names: Any) -> list[str]:
    """Names in natural order: ``site[2]`` before ``site[10]`` (family members by index)."""
    import re

    def key(name: str) -> tuple[Any, ...]:
        return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))

    return sorted(names, key=key)


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _nested(value: np.ndarray) -> Any:
    """Nested lists of floats; NaN and +-Inf become None (JSON has no such numbers)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == ():
        return _finite_or_none(float(arr))
    if bool(np.isfinite(arr).all()):
        return arr.tolist()
    out = arr.astype(object)
    out[~np.isfinite(arr)] = None
    return out.tolist()


def _jsonable_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: {k: value[k] for k in natural_sorted(value)} if isinstance(value, Mapping) else value
        for key, value in sorted(summary.items())
    }


def _opt_float(value: float | None) -> float | None:
    return None if value is None else _finite_or_none(float(value))


@dataclass
class SolveResult:
    """Outcome of :func:`catopt_dsl.solver.solve` / :func:`solve_centralized`.

    ``objective`` is the plan objective in minimise form (sum of object objectives plus shared
    terms) at the returned point; ``None`` when the status is infeasible/unbounded/failed.
    ``objects``/``shared`` map names to ``{var: array of the var's shape}``.
    """

    status: str
    objective: float | None
    iterations: int | None
    primal_residual: float | None
    dual_residual: float | None
    solve_time_s: float
    objects: dict[str, dict[str, np.ndarray]]
    shared: dict[str, dict[str, np.ndarray]]
    message: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    state: SolverState | None = None
    #: things the user should know that do not change the status (printed as `warning:` lines)
    warnings: list[str] = field(default_factory=list)
    #: dual prices when the status is ``optimal``: ``{"couplings": {id: array}, "consensus":
    #: {"object.var": array}}`` (sign convention in ``Coordinator.prices``); empty otherwise
    prices: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    #: who solved the x-updates (in-process ADMM; None elsewhere): objects per solver class and
    #: per method, the objects CVXPY solved (and why), the steps that fell back to CVXPY per object
    local_solvers: dict[str, Any] | None = None

    @property
    def has_solution(self) -> bool:
        """Whether the result holds a point worth reading (``optimal``, ``max_iterations``, or
        ``member_lost``: the optimum of the plan without the lost members)."""
        return self.status in ("optimal", "max_iterations", "member_lost", "stationary")
    #: membership, protocol counters and per-round metrics of a distributed run (None in-process)
    run: RunDetails | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON-able summary (no history/state); keys sorted, arrays as nested lists.

        Always valid JSON: a non-finite number (a diverged value) is ``null``; the status says why.
        """
        return {
            "dual_residual": _opt_float(self.dual_residual),
            "iterations": None if self.iterations is None else int(self.iterations),
            "local_solvers": None if self.local_solvers is None else _jsonable_summary(self.local_solvers),
            "membership": None if self.run is None else self.run.to_json(),
            "message": self.message,
            "objective": _opt_float(self.objective),
            "objects": None
            if not self.has_solution
            else {
                name: {var: _nested(val) for var, val in sorted(self.objects[name].items())}
                for name in natural_sorted(self.objects)
            },
            "prices": {
                kind: {key: _nested(val) for key, val in ((k, table[k]) for k in natural_sorted(table))}
                for kind, table in sorted(self.prices.items())
            },
            "primal_residual": _opt_float(self.primal_residual),
            "shared": None
            if not self.has_solution
            else {
                name: {var: _nested(val) for var, val in sorted(self.shared[name].items())}
                for name in natural_sorted(self.shared)
            },
            "solve_time_s": float(self.solve_time_s),
            "status": self.status,
            "warnings": list(self.warnings),
        }
