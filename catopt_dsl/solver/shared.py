"""The consensus z-update: a weighted prox of g_s over one SharedVariables block.

For block s with vars v, each linked by N_v consensus row blocks whose averaged ``h + u`` is m_v,

    z_s = argmin_z  g_s(z) + rho/2 * sum_v N_v ||z_v - m_v||^2      s.t. the block's constraints

Closed forms (no constraints on the block): g absent -> z_v = m_v; ``c*sum_squares(v)`` ->
``z_v = rho N_v m_v / (2c + rho N_v)``; ``c*norm1(v)`` -> soft threshold of m_v at ``c/(rho N_v)``
(c a nonnegative constant scalar, each var in at most one term). A var with no links (N_v = 0)
takes the minimiser of its own term (0 for these closed forms). Anything else is solved with
CVXPY, compiled once with parameters ``w_v = sqrt(rho N_v)`` and ``w_v * m_v`` (DPP).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import cvxpy as cp
import numpy as np

from catopt_dsl.ir.analysis import SharedAnalysis, analyze_shared
from catopt_dsl.ir.evaluate import evaluate
from catopt_dsl.ir.model import IRShared
from catopt_dsl.solver.certificate import RECESSION_TOL, recession_slope
from catopt_dsl.solver.cvx import solve_problem, stacked_views, to_cvxpy

__all__ = ["SharedProx", "ProxFailure"]


class ProxFailure(RuntimeError):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _prox_sum_squares(m: np.ndarray, c: float, rho_n: float) -> np.ndarray:
    if 2.0 * c + rho_n == 0.0:
        return np.zeros_like(m)
    return rho_n * m / (2.0 * c + rho_n)


def _prox_norm1(m: np.ndarray, c: float, rho_n: float) -> np.ndarray:
    if rho_n == 0.0:
        return np.zeros_like(m)
    kappa = c / rho_n
    return np.sign(m) * np.maximum(np.abs(m) - kappa, 0.0)


class SharedProx:
    """The z-update of one shared block (closed form when possible, else CVXPY)."""

    def __init__(self, block: IRShared, analysis: SharedAnalysis | None = None) -> None:
        self.block = block
        self.params = {p.name: np.asarray(p.value, dtype=np.float64) for p in block.params}
        #: the block's closed form, forms and domain, from the IR analysis
        self.analysis = analysis if analysis is not None else analyze_shared(block)
        self.closed = self.analysis.closed
        self._problem: cp.Problem | None = None
        #: z-updates CVXPY flagged as inaccurate (reported only if the run is not verified)
        self.inaccurate = 0
        self._cvx: tuple[cp.Variable | None, dict[str, cp.Expression], cp.Expression | None] | None = None

    def _model(self) -> tuple[cp.Variable | None, dict[str, cp.Expression], cp.Expression | None]:
        """The block's CVXPY variable, views and g, built on first use (closed-form blocks never
        need them unless a certificate asks for a support value)."""
        if self._cvx is None:
            z = cp.Variable(self.block.n) if self.block.n else None
            views = stacked_views(z, self.block.vars) if z is not None else {}
            g = None
            if self.block.objective is not None and z is not None:
                value = to_cvxpy(self.block.objective, views, self.params)
                g = value if isinstance(value, cp.Expression) else cp.Constant(value)
            self._cvx = (z, views, g)
        return self._cvx

    @property
    def _z(self) -> cp.Variable | None:
        return self._model()[0]

    @property
    def _views(self) -> dict[str, cp.Expression]:
        return self._model()[1]

    @property
    def _g(self) -> cp.Expression | None:
        return self._model()[2]

    @property
    def closed_form(self) -> bool:
        return self.closed is not None

    @property
    def full_domain(self) -> bool:
        """No constraints and g finite everywhere: z ranges over all of R^n."""
        return self.analysis.full_domain

    def _cons(self) -> list[cp.Constraint]:
        cons = []
        for con in self.block.constraints:
            lhs = to_cvxpy(con.lhs, self._views, self.params)
            rhs = to_cvxpy(con.rhs, self._views, self.params)
            cons.append(lhs <= rhs if con.op == "<=" else lhs >= rhs if con.op == ">=" else lhs == rhs)
        return cons

    def support(self, sums: Mapping[str, np.ndarray]) -> float:
        """``sup s'z`` over the block's constraints and g's domain (``inf`` when unbounded, NaN
        when the solve fails); ``s`` per var, zero for vars not given."""
        if self._z is None:
            return 0.0
        s = np.zeros(self.block.n)
        for v in self.block.vars:
            if v.name in sums:
                s[v.offset : v.offset + v.size] = np.asarray(sums[v.name], dtype=np.float64).reshape(-1)
        cons = self._cons() + (list(self._g.domain) if self._g is not None else [])
        problem = cp.Problem(cp.Maximize(s @ self._z), cons)
        status, _ = solve_problem(problem, warm=False)
        if status in ("unbounded", "unbounded_inaccurate"):
            return float("inf")
        if status != "optimal" or problem.value is None:
            return float("nan")
        return float(problem.value)

    def recession_slope(self, dz: np.ndarray) -> float | None:
        """The slope of g along the direction dz if dz is a recession direction of the block (its
        constraints and g), else None (rules in ``catopt_dsl.solver.certificate``)."""
        dz = np.asarray(dz, dtype=np.float64)
        size = float(np.abs(dz).max(initial=0.0))
        if size == 0.0:
            return 0.0
        if self.closed is not None:
            slope = 0.0
            for v in self.block.vars:
                part = dz[v.offset : v.offset + v.size]
                atom, c = self.closed.get(v.name, ("none", 0.0))
                if atom == "sum_squares" and c > 0.0 and float(np.abs(part).max(initial=0.0)) > RECESSION_TOL * size:
                    return None  # g grows quadratically along it
                if atom == "norm1":
                    slope += c * float(np.abs(part).sum())
            return slope
        quad, cons = self.analysis.objective, self.analysis.constraints
        if quad is None or cons is None:
            return None
        A_eq, A_in = cons.A_eq, cons.A_in
        return recession_slope(0.5 * (quad.P + quad.P.T), quad.q, A_eq, A_in, dz)

    @cached_property
    def _closed_parts(self) -> tuple[tuple[str, float, int, int, tuple[int, ...]], ...]:
        """The closed form's terms with their vars' ranges: (atom, c, start, stop, shape)."""
        assert self.closed is not None
        parts = []
        for name, (atom, c) in self.closed.items():
            v = self.block.var(name)
            parts.append((atom, c, v.offset, v.offset + v.size, tuple(v.shape)))
        return tuple(parts)

    def g_value(self, z: np.ndarray) -> float:
        """g_s(z) (0 when the block has no objective), evaluated with numpy from the IR."""
        if self.block.objective is None or not self.block.n:
            return 0.0
        z = np.asarray(z, dtype=np.float64)
        if self.closed is not None:
            # the closed form's own terms (c * sum_squares(v), c * norm1(v)): no tree walk per iteration
            total = 0.0
            with np.errstate(all="ignore"):
                for atom, c, start, stop, shape in self._closed_parts:  # in the objective's order, as evaluated
                    part = z[start:stop].reshape(shape)
                    if atom == "norm1":
                        total += c * float(np.sum(np.abs(part)))
                    elif atom == "sum_squares":
                        total += c * float(np.sum(part**2))
            return total
        values = {v.name: z[v.offset : v.offset + v.size].reshape(v.shape) for v in self.block.vars}
        with np.errstate(all="ignore"):
            return float(evaluate(self.block.objective, values, self.params))

    def prox(
        self, means: Mapping[str, np.ndarray], counts: Mapping[str, int], rho: float, z_prev: np.ndarray
    ) -> np.ndarray:
        """Return the new stacked z (means are flat per var; counts N_v may be 0)."""
        z = np.array(z_prev, dtype=np.float64, copy=True)
        if self.closed is not None:
            for v in self.block.vars:
                n_v = counts.get(v.name, 0)
                m = np.asarray(means.get(v.name, np.zeros(v.size)), dtype=np.float64)
                rho_n = rho * n_v
                atom, c = self.closed.get(v.name, ("none", 0.0))
                if atom == "sum_squares":
                    val = _prox_sum_squares(m, c, rho_n)
                elif atom == "norm1":
                    val = _prox_norm1(m, c, rho_n)
                elif n_v > 0:
                    val = m
                else:
                    continue  # unlinked and free: keep the previous value
                z[v.offset : v.offset + v.size] = val
            return z
        return self._prox_cvxpy(means, counts, rho, z_prev)

    def _build(self) -> None:
        assert self._z is not None
        self._w = {v.name: cp.Parameter(nonneg=True, name=f"w_{v.name}") for v in self.block.vars}
        self._wm = {v.name: cp.Parameter(v.size, name=f"wm_{v.name}") for v in self.block.vars}
        fit = sum(
            cp.sum_squares(self._w[v.name] * self._z[v.offset : v.offset + v.size] - self._wm[v.name])
            for v in self.block.vars
        )
        objective = 0.5 * fit if self._g is None else self._g + 0.5 * fit
        self._problem = cp.Problem(cp.Minimize(objective), self._cons())

    def _prox_cvxpy(
        self, means: Mapping[str, np.ndarray], counts: Mapping[str, int], rho: float, z_prev: np.ndarray
    ) -> np.ndarray:
        if self._z is None:
            return np.zeros(0)
        if self._problem is None:
            self._build()
        assert self._problem is not None
        for v in self.block.vars:
            w = float(np.sqrt(rho * counts.get(v.name, 0)))
            self._w[v.name].value = w
            self._wm[v.name].value = w * np.asarray(means.get(v.name, np.zeros(v.size)), dtype=np.float64)
        self._z.value = np.asarray(z_prev, dtype=np.float64)
        status, inaccurate = solve_problem(self._problem)
        self.inaccurate += inaccurate
        if status in ("optimal", "optimal_inaccurate") and self._z.value is not None:
            return np.asarray(self._z.value, dtype=np.float64).copy()
        if status in ("infeasible", "infeasible_inaccurate"):
            raise ProxFailure(
                "infeasible",
                f"shared block `{self.block.name}`: its constraints are infeasible (CVXPY: {status})",
            )
        if status in ("unbounded", "unbounded_inaccurate"):
            raise ProxFailure(
                "unbounded", f"shared block `{self.block.name}`: g is unbounded below (CVXPY: {status})"
            )
        raise ProxFailure("local_solver_failed", f"shared block `{self.block.name}`: CVXPY status {status}")
