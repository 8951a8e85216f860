"""The local-solver layer: every object's x-update, batched over family members.

Each object's IR analysis (``catopt_dsl.ir.analysis``) gives it a solver class; with its rows M
(``layout.py``) that class picks a *method* (:func:`~catopt_dsl.solver.local.base.choose_method`,
:data:`~catopt_dsl.solver.local.base.METHODS`):

==========  ============================================================  ======================
method      objects                                                       module
==========  ============================================================  ======================
``kkt``     quadratic objective, linear equalities                        ``kkt.py``
``clip``    separable quadratic with bounds                               ``kkt.py``
``coord``   separable smooth terms (log utilities, ...) with bounds       ``newton.py``
``newton``  smooth terms (logistic, huber, exp, log, log_sum_exp),         ``newton.py``
            linear equalities
``split``   quadratic + terms with closed-form proxes (abs, norm1,         ``split.py``
            norm2, huber, ...) + linear inequalities (lifted ``abs``
            and ``norm_inf`` constraints included)
``cvxpy``   everything else, and any member whose method failed a step    ``worker.py``
``adapter`` an external loss: its framework adapter's prox step            ``external.py``
==========  ============================================================  ======================

Members of one structure and row count are one *batch*: their data is stacked once (the
analysis already holds it that way) and every step is a handful of numpy operations over the
stack, whatever the family size. The interface of a batch is
:class:`~catopt_dsl.solver.local.base.BatchSolver`: ``solve(D, rho, members) -> StepResult``
(``X``, a success mask, reasons), ``objective`` and ``grad_scale`` for the reports. A member whose
step fails is solved by CVXPY for that step, which then reports the honest status with the
object's name (``worker.py``); ``solve --json`` counts those fallbacks per object.
"""

from __future__ import annotations

from catopt_dsl.solver.local.base import (
    METHODS,
    Accuracy,
    BatchData,
    BatchSolver,
    StepResult,
    choose_method,
)
from catopt_dsl.solver.local.kkt import FAST_MAX_SIZE, KKTSolver

__all__ = [
    "FAST_MAX_SIZE",
    "METHODS",
    "Accuracy",
    "BatchData",
    "BatchSolver",
    "KKTSolver",
    "StepResult",
    "choose_method",
    "make_solver",
]


def make_solver(method: str, data: BatchData, accuracy: Accuracy | None = None) -> BatchSolver:
    """The batch solver of ``method`` for ``data`` (its ``accepted`` mask says who it can take)."""
    if method in ("kkt", "clip"):
        return KKTSolver(data, clip=method == "clip", accuracy=accuracy)
    if method in ("newton", "coord"):
        from catopt_dsl.solver.local.newton import CoordSolver, NewtonSolver

        return NewtonSolver(data, accuracy) if method == "newton" else CoordSolver(data, accuracy)
    if method == "split":
        from catopt_dsl.solver.local.split import SplitSolver

        return SplitSolver(data, accuracy)
    raise ValueError(f"no batch solver for method `{method}`")
