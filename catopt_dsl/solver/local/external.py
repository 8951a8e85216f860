"""The x-update of an object whose objective a framework adapter computes (an external loss).

The object's x-update is ``x = argmin_x f(x) + rho/2 ||M x - d||^2`` with ``f`` the tenant's loss
behind a :class:`~catopt_dsl.adapters.api.FrameworkProblem`. On a consensus plan every var of the
object is linked ``c`` times (``M'M = c I``; ``c = 1`` for one Limit), and then

    rho/2 ||M x - d||^2 = (c rho)/2 ||x - M'd / c||^2 + const,

so the x-update is exactly the adapter's prox step ``prox(v = M'd / c, c rho)``, warm-started from
the previous x, on the tenant's device. When the rows weigh the vars unevenly (some linked twice,
some not at all), the x-update is solved here instead by trust-region Newton-CG (SciPy's
``trust-krylov``) on the adapter's loss, gradient and Hessian-vector products.

An x-update that does not meet the adapter's stopping rule is a failed step, reported with the
object's name; it is never handed to CVXPY, which cannot see the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl.ir.model import IRObject

__all__ = ["ExternalProx", "ExternalStep", "external_loss"]


class ExternalStep:
    """One x-update's outcome: ``x``, whether it met the stopping rule, why not, inner iterations."""

    __slots__ = ("iterations", "message", "ok", "x")

    def __init__(self, x: np.ndarray, ok: bool, message: str, iterations: int) -> None:
        self.x, self.ok, self.message, self.iterations = x, ok, message, iterations


class ExternalProx:
    """The adapter-backed x-update of ``obj`` with rows ``M`` (``obj.external`` must be set).

    Resolving the adapter and building its problem happens here, in the process that solves (on a
    distributed run, the worker's), with the device the plan asks for: ``on cuda`` places the work
    through the `cuda` hardware adapter and falls back to the CPU with a note when it cannot.
    """

    def __init__(self, obj: IRObject, M: np.ndarray, tol: float = 1e-9) -> None:
        from catopt_dsl.adapters.api import (
            AdapterError,
            FrameworkAdapter,
            ParamLayout,
            ProxOptions,
        )
        from catopt_dsl.adapters.registry import Requirement, place, resolve

        ext = obj.external
        if ext is None:  # pragma: no cover - the caller checks
            raise ValueError(f"object `{obj.name}` has no external loss")
        found = resolve(Requirement(ext.adapter, ext.requirement), kind="framework")
        if not found.ok or not isinstance(found.adapter, FrameworkAdapter):
            raise AdapterError(f"object `{obj.name}`: {found.message}")
        self.adapter: FrameworkAdapter = found.adapter
        preferences = (obj.platform, "cpu") if obj.platform not in (None, "cpu") else ("cpu",)
        placement = place(ext.adapter, tuple(p for p in preferences if p is not None))
        self.device = placement.device
        #: why the plan's platform was passed over ("cuda unavailable: ...; placed on cpu")
        self.notes = placement.notes
        layout = ParamLayout.of(*((v.name, v.shape) for v in obj.vars))
        self.problem = self.adapter.problem(
            ext.reference,
            dict(ext.data),
            layout,
            device=self.device,
            options=ProxOptions(tol=tol),
            search_path=(Path(ext.search_path),),
        )
        self.name = obj.name
        M = np.asarray(M, dtype=np.float64)
        self.M = M
        MtM = M.T @ M
        c = float(MtM[0, 0]) if MtM.size else 0.0
        #: the rows' weight when M'M = c I (then the adapter's prox step is the x-update), else None
        self.scale: float | None = c if c > 0 and np.array_equal(MtM, c * np.eye(MtM.shape[0])) else None
        self.steps = 0
        self.inner_iterations = 0

    def loss(self, x: np.ndarray) -> float:
        return float(self.problem.loss(np.asarray(x, dtype=np.float64)))

    def step(self, d: np.ndarray, rho: float, warm: np.ndarray) -> ExternalStep:
        """The x-update for centres ``d`` and ``rho``, started from ``warm``."""
        self.steps += 1
        if self.scale is not None:
            c = self.scale
            v = (self.M.T @ d) / c
            result = self.problem.prox(v, c * rho, warm=warm)
            self.inner_iterations += result.iterations
            message = "" if result.converged else f"object `{self.name}`: {result.message}"
            return ExternalStep(result.theta, bool(result.converged), message, result.iterations)
        return self._newton(d, rho, warm)

    def _newton(self, d: np.ndarray, rho: float, warm: np.ndarray) -> ExternalStep:
        from scipy.optimize import minimize

        M, p = self.M, self.problem
        tol = 1e-9

        def fun(x: np.ndarray) -> float:
            r = M @ x - d
            return float(p.loss(x)) + 0.5 * rho * float(r @ r)

        def jac(x: np.ndarray) -> np.ndarray:
            return p.grad(x) + rho * (M.T @ (M @ x - d))

        def hessp(x: np.ndarray, u: np.ndarray) -> np.ndarray:
            return p.hvp(x, u) + rho * (M.T @ (M @ u))

        res: Any = minimize(fun, np.asarray(warm, dtype=np.float64), jac=jac, hessp=hessp, method="trust-krylov",
                            options={"gtol": tol, "maxiter": 200})
        x = np.asarray(res.x, dtype=np.float64)
        g = float(np.abs(jac(x)).max(initial=0.0))
        scale = max(1.0, float(np.abs(rho * (M.T @ (M @ x - d))).max(initial=0.0)))
        ok = bool(np.isfinite(x).all()) and g <= 1e3 * tol * scale
        self.inner_iterations += int(res.nit)
        message = "" if ok else f"object `{self.name}`: x-update stopped with ||grad||_inf = {g:.2e} ({res.message})"
        return ExternalStep(x, ok, message, int(res.nit))


def external_loss(obj: IRObject) -> Callable[[np.ndarray], float]:
    """``x -> f(x)`` for ``obj``'s external loss, evaluated through its adapter on the CPU (what a
    process that runs no x-update of the object, e.g. a distributed coordinator, reports with)."""
    from catopt_dsl.adapters.api import AdapterError, FrameworkAdapter, ParamLayout
    from catopt_dsl.adapters.registry import Requirement, resolve

    ext = obj.external
    if ext is None:  # pragma: no cover - the caller checks
        raise ValueError(f"object `{obj.name}` has no external loss")
    found = resolve(Requirement(ext.adapter, ext.requirement), kind="framework")
    if not found.ok or not isinstance(found.adapter, FrameworkAdapter):
        raise AdapterError(f"object `{obj.name}`: {found.message}")
    layout = ParamLayout.of(*((v.name, v.shape) for v in obj.vars))
    problem = found.adapter.problem(ext.reference, dict(ext.data), layout, search_path=(Path(ext.search_path),))
    return lambda x: float(problem.loss(np.asarray(x, dtype=np.float64)))
