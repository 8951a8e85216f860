"""``solve_centralized(plan)``: the whole plan as one CVXPY problem -- the independent check.

Variables: one stacked vector per object and per shared block. Objective: sum of object
objectives (minimise form) + shared objectives. Constraints: every local and shared-block
constraint, ``x_i[var] == z_s[shared_var]`` per consensus link, and ``sum_t (B_t x + b_t)
<sense> rhs`` per coupling. Solved with CVXPY's default solver; ``iterations`` is None.
Shares nothing with the ADMM code path except the IR -> CVXPY builder.
"""

from __future__ import annotations

import time

import cvxpy as cp
import numpy as np

from catopt_dsl.ir.model import IRConstraint, IRPlan, IRVar
from catopt_dsl.solver.cvx import solve_problem, stacked_views, to_cvxpy
from catopt_dsl.solver.result import SolveResult

__all__ = ["solve_centralized"]


def _views(x: cp.Variable, vars: tuple[IRVar, ...]) -> dict[str, cp.Expression]:
    return stacked_views(x, vars)


def _constraint(
    con: IRConstraint, views: dict[str, cp.Expression], params: dict[str, np.ndarray]
) -> cp.Constraint:
    lhs = to_cvxpy(con.lhs, views, params)
    rhs = to_cvxpy(con.rhs, views, params)
    if not isinstance(lhs, cp.Expression):
        lhs = cp.Constant(np.asarray(lhs, dtype=np.float64))
    if con.op == "<=":
        return lhs <= rhs
    if con.op == ">=":
        return lhs >= rhs
    return lhs == rhs


def _expr(value: object) -> cp.Expression:
    return value if isinstance(value, cp.Expression) else cp.Constant(np.asarray(value, dtype=np.float64))


def solve_centralized(plan: IRPlan) -> SolveResult:
    """Solve the plan as a single CVXPY problem (no decomposition)."""
    start = time.perf_counter()
    xs: dict[str, cp.Variable] = {}
    zs: dict[str, cp.Variable] = {}
    terms: list[cp.Expression] = []
    cons: list[cp.Constraint] = []
    for obj in plan.objects:
        x = cp.Variable(max(obj.n, 1), name=f"x_{obj.name}")
        xs[obj.name] = x
        views = _views(x, obj.vars)
        params = {p.name: np.asarray(p.value, dtype=np.float64) for p in obj.params}
        terms.append(_expr(to_cvxpy(obj.objective, views, params)))
        cons.extend(_constraint(c, views, params) for c in obj.constraints)
    for blk in plan.shared:
        z = cp.Variable(max(blk.n, 1), name=f"z_{blk.name}")
        zs[blk.name] = z
        views = _views(z, blk.vars)
        params = {p.name: np.asarray(p.value, dtype=np.float64) for p in blk.params}
        if blk.objective is not None:
            terms.append(_expr(to_cvxpy(blk.objective, views, params)))
        cons.extend(_constraint(c, views, params) for c in blk.constraints)
    link_cons: dict[str, tuple[cp.Constraint, tuple[int, ...]]] = {}
    for link in plan.consensus:
        ov = plan.object(link.object).var(link.var)
        sv = plan.shared_block(link.shared).var(link.shared_var)
        con = xs[link.object][ov.offset : ov.offset + ov.size] == zs[link.shared][sv.offset : sv.offset + sv.size]
        cons.append(con)
        link_cons[f"{link.object}.{link.var}"] = (con, tuple(ov.shape))
    coupling_cons: dict[str, tuple[cp.Constraint, float, tuple[int, ...]]] = {}
    for coupling in plan.couplings:
        rhs = np.asarray(coupling.rhs, dtype=np.float64).reshape(-1)
        total: cp.Expression | None = None
        for term in coupling.terms:
            n = plan.object(term.object).n
            B = np.asarray(term.B, dtype=np.float64).reshape(-1, n)
            piece = B @ xs[term.object][:n] + np.asarray(term.b, dtype=np.float64).reshape(-1)
            total = piece if total is None else total + piece
        if total is None:
            total = cp.Constant(np.zeros(rhs.size))
        # CVXPY's dual of `a >= b` multiplies b - a; the reported price multiplies sum - rhs
        con, sign = (total <= rhs, 1.0) if coupling.sense == "<=" else (total >= rhs, -1.0) if coupling.sense == ">=" else (total == rhs, 1.0)
        cons.append(con)
        coupling_cons[coupling.name] = (con, sign, tuple(coupling.shape))
    objective = (
        cp.sum(cp.hstack([cp.reshape(t, (1,), order="C") for t in terms])) if terms else cp.Constant(0.0)
    )
    problem = cp.Problem(cp.Minimize(objective), cons)
    message = ""
    notes: list[str] = []
    # Clarabel, as the local solves: accurate, and it prints nothing (OSQP's C code writes its
    # validation errors straight to the terminal, which would corrupt `--json` output).
    raw, inaccurate = solve_problem(problem, warm=False)
    if raw.startswith("solver_error"):
        message = f"centralised solve failed: {raw}"
    if inaccurate:
        notes.append(
            f"the centralised solve is inaccurate (CVXPY status `{raw}`): its solver stopped at a looser "
            "tolerance; rescale the plan's data (values near 1 solve best) before trusting the reference"
        )
    if raw in ("optimal", "optimal_inaccurate"):
        status = "optimal"
    elif raw in ("infeasible", "infeasible_inaccurate"):
        status = "infeasible"
    elif raw in ("unbounded", "unbounded_inaccurate"):
        status = "unbounded"
    else:
        status = "local_solver_failed"
        message = message or f"centralised solve: CVXPY status `{raw}`"
    objects: dict[str, dict[str, np.ndarray]] = {}
    shared: dict[str, dict[str, np.ndarray]] = {}
    ok = status == "optimal"
    for obj in plan.objects:
        val = xs[obj.name].value if ok else None
        vec = np.zeros(obj.n) if val is None else np.asarray(val, dtype=np.float64)
        objects[obj.name] = {
            v.name: vec[v.offset : v.offset + v.size].reshape(v.shape).copy() for v in obj.vars
        }
    names = set(plan.colimit.shared) if plan.colimit is not None else {b.name for b in plan.shared}
    for blk in plan.shared:
        if blk.name not in names:
            continue
        val = zs[blk.name].value if ok else None
        vec = np.zeros(blk.n) if val is None else np.asarray(val, dtype=np.float64)
        shared[blk.name] = {
            v.name: vec[v.offset : v.offset + v.size].reshape(v.shape).copy() for v in blk.vars
        }
    prices: dict[str, dict[str, np.ndarray]] = {}
    if ok:
        prices = {
            "couplings": {
                name: sign * np.asarray(con.dual_value, dtype=np.float64).reshape(shape)
                for name, (con, sign, shape) in coupling_cons.items()
                if con.dual_value is not None
            },
            "consensus": {
                key: np.asarray(con.dual_value, dtype=np.float64).reshape(shape)
                for key, (con, shape) in link_cons.items()
                if con.dual_value is not None
            },
        }
    return SolveResult(
        status=status,
        objective=float(problem.value) if ok and problem.value is not None else None,
        iterations=None,
        primal_residual=None,
        dual_residual=None,
        solve_time_s=time.perf_counter() - start,
        objects=objects,
        shared=shared,
        message=message,
        warnings=notes,
        prices=prices,
    )
