"""The reference ADMM solver (consensus + sharing) and the centralised CVXPY check.

Public API::

    solve(plan, options=None, *, warm_start=None, progress=None) -> SolveResult
    solve_centralized(plan) -> SolveResult
    SolveOptions, SolveResult, SolverState
    LocalWorker, Coordinator, LocalReport, Iterate   (building blocks for distributed runs)
    to_cvxpy(expr, vars, params)                        (IR -> CVXPY)
"""

from __future__ import annotations

from catopt_dsl.solver.admm import build_workers, solve
from catopt_dsl.solver.centralized import solve_centralized
from catopt_dsl.solver.coordinator import Coordinator, Iterate
from catopt_dsl.solver.cvx import to_cvxpy
from catopt_dsl.solver.layout import Layout, build_layout
from catopt_dsl.solver.result import STATUSES, SolveOptions, SolveResult, SolverState
from catopt_dsl.solver.worker import FastBatch, LocalReport, LocalWorker

__all__ = [
    "STATUSES",
    "Iterate",
    "LocalReport",
    "Coordinator",
    "FastBatch",
    "Layout",
    "LocalWorker",
    "SolveOptions",
    "SolveResult",
    "SolverState",
    "build_layout",
    "build_workers",
    "solve",
    "solve_centralized",
    "to_cvxpy",
]
