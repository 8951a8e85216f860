"""Acceptance D: the closed-form fast path and the CVXPY path agree; quadratic extraction is exact."""

from __future__ import annotations

from dataclasses import replace

import cvxpy as cp
import numpy as np
import pytest

import factories as F
from catopt_dsl.solver import (
    FastBatch,
    SolveOptions,
    build_layout,
    build_workers,
    solve,
    solve_centralized,
    to_cvxpy,
)
from catopt_dsl.ir.model import IRConstraint, IRExpr, IRPlan
from catopt_dsl.solver.cvx import stacked_views
from catopt_dsl.ir.analysis import NotQuadratic, linear_constraints, quadratic_form


def test_fast_and_cvxpy_paths_agree() -> None:
    plan = F.quadratic_plan()
    opts = dict(eps_abs=1e-7, eps_rel=1e-7)
    fast = solve(plan, SolveOptions(fast_path=True, **opts))
    slow = solve(plan, SolveOptions(fast_path=False, **opts))
    assert fast.status == slow.status == "optimal"
    assert fast.iterations == pytest.approx(slow.iterations, abs=2)
    assert fast.objective == pytest.approx(slow.objective, rel=1e-6)
    for name in fast.objects:
        for var in fast.objects[name]:
            np.testing.assert_allclose(fast.objects[name][var], slow.objects[name][var], atol=1e-5)
    # the first iterations are the same iterates
    for a, b in zip(fast.history[:5], slow.history[:5]):
        assert a["r_prim"] == pytest.approx(b["r_prim"], rel=1e-5, abs=1e-8)


def test_methods_are_read_from_the_tree() -> None:
    layout = build_layout(F.quadratic_plan())
    assert all(w.fast and w.method == "kkt" for w in build_workers(layout, SolveOptions()))
    assert not any(w.fast for w in build_workers(layout, SolveOptions(fast_path=False)))
    # an atom no local method handles: CVXPY
    layout = build_layout(F.consensus_regression(cvxpy_terms=True))
    assert not any(w.fast for w in build_workers(layout, SolveOptions()))
    # coordinate bounds with a separable objective: the prox step is a clip
    plan = F.sharing("<=", vector=True)
    workers = build_workers(build_layout(plan), SolveOptions())
    assert all(w.fast and w.method == "clip" for w in workers)
    for w in workers:
        cons = w.analysis.constraints
        assert cons is not None and np.all(cons.lo == 0.0) and np.all(np.isinf(cons.hi))


def _with_constraint(plan: IRPlan, lhs: IRExpr, op: str, rhs: IRExpr) -> IRPlan:
    objects = tuple(
        replace(o, constraints=o.constraints + (IRConstraint(lhs, op, rhs),)) for o in plan.objects
    )
    return replace(plan, objects=objects)


def test_bounds_over_several_coordinates_or_coupled_objectives_are_split() -> None:
    base = F.sharing("<=", vector=True)
    summed = _with_constraint(base, F.call("sum", F.V("x", (2,))), "<=", F.C(5.0))
    assert all(w.method == "split" for w in build_workers(build_layout(summed), SolveOptions()))
    # a non-diagonal quadratic (x0 * x1 cross term via quad_form) with bounds: not separable
    Q = np.array([[2.0, 0.5], [0.5, 1.0]])
    coupled = replace(
        base,
        objects=tuple(replace(o, objective=F.call("quad_form", F.V("x", (2,)), F.C(Q))) for o in base.objects),
    )
    assert all(w.method == "split" for w in build_workers(build_layout(coupled), SolveOptions()))
    for plan in (summed, coupled):
        fast, ref = solve(plan, SolveOptions(eps_abs=1e-7, eps_rel=1e-7)), solve_centralized(plan)
        assert fast.status == ref.status == "optimal"
        assert fast.objective == pytest.approx(ref.objective, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("rho", [0.05, 1.0, 40.0])
def test_boxed_step_equals_the_cvxpy_prox(rho: float) -> None:
    """The clipped closed form is the exact bounded prox: compare with CVXPY at random centres."""
    layout = build_layout(F.sharing("<=", vector=True))
    fast = build_workers(layout, SolveOptions())
    slow = build_workers(layout, SolveOptions(fast_path=False))
    rng = np.random.default_rng(7)
    for wf, ws in zip(fast, slow):
        centres = rng.normal(scale=3.0, size=wf.r)  # some coordinates land below the bound 0
        np.testing.assert_allclose(wf.step(centres, rho), ws.step(centres, rho), atol=1e-6)


@pytest.mark.parametrize("sense", ["<=", "==", ">="])
def test_boxed_sharing_agrees_with_the_cvxpy_path(sense: str) -> None:
    plan = F.sharing(sense, vector=True)
    fast = solve(plan, SolveOptions(eps_abs=1e-7, eps_rel=1e-7))
    slow = solve(plan, SolveOptions(eps_abs=1e-7, eps_rel=1e-7, fast_path=False))
    assert fast.status == slow.status == "optimal"
    assert fast.iterations == pytest.approx(slow.iterations, abs=2)
    assert fast.objective == pytest.approx(slow.objective, rel=1e-6, abs=1e-9)


def test_batched_step_equals_per_worker_step() -> None:
    plan = F.quadratic_plan()
    layout = build_layout(plan)
    workers = build_workers(layout, SolveOptions())
    rng = np.random.default_rng(0)
    centres = {w.name: rng.normal(size=w.r) for w in workers}
    for rho in (0.3, 7.0):
        single = {w.name: w.step(centres[w.name], rho).copy() for w in workers}
        FastBatch(workers).step_all(centres, rho)
        for w in workers:
            np.testing.assert_allclose(w.x, single[w.name], atol=1e-12)


def test_fast_step_solves_the_prox_problem() -> None:
    """The closed-form x minimises f + rho/2||Mx - d||^2 subject to the equalities (vs CVXPY)."""
    plan = F.quadratic_plan()
    layout = build_layout(plan)
    workers = build_workers(layout, SolveOptions())
    rng = np.random.default_rng(1)
    for w, rows in zip(workers, layout.objects):
        d = rng.normal(size=w.r)
        rho = 2.5
        x = w.step(d, rho)
        xv = cp.Variable(w.n)
        views = stacked_views(xv, w.obj.vars)
        params = {p.name: np.asarray(p.value) for p in w.obj.params}
        f = to_cvxpy(w.obj.objective, views, params)
        cons = [to_cvxpy(c.lhs, views, params) == to_cvxpy(c.rhs, views, params) for c in w.obj.constraints]
        cp.Problem(cp.Minimize(f + rho / 2 * cp.sum_squares(rows.M @ xv - d)), cons).solve(solver=cp.CLARABEL)
        np.testing.assert_allclose(x, xv.value, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quadratic_form_matches_cvxpy_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4
    A = rng.normal(size=(3, n))
    Q = rng.normal(size=(2, 2))
    Q = Q @ Q.T
    w, v = F.V("w", (n,)), F.V("v", (2, 2))
    expr = F.total(
        F.mul(F.C(0.5), F.call("sum_squares", F.sub(F.matmul(F.P("A", (3, n)), w), F.C(np.ones(3))))),
        F.div(F.call("quad_form", F.call("sum", v, axis=0), F.P("Q", (2, 2))), F.C(4.0)),
        F.neg(F.call("dot", F.C(np.arange(n, dtype=float)), w)),
        F.call("sum", F.call("square", F.sub(F.call("transpose", v), F.C(2.0)))),
        F.C(3.0),
    )
    vars_ = F.make_vars([("w", (n,)), ("v", (2, 2))])
    params = {"A": A, "Q": Q}
    quad = quadratic_form(expr, vars_, params)
    xv = cp.Variable(n + 4)
    cexpr = to_cvxpy(expr, stacked_views(xv, vars_), params)
    for _ in range(3):
        x = rng.normal(size=n + 4)
        xv.value = x
        assert quad.value(x) == pytest.approx(float(cexpr.value), rel=1e-10)


def test_not_quadratic_is_rejected() -> None:
    vars_ = F.make_vars([("w", (2,))])
    for expr in (
        F.call("norm1", F.V("w", (2,))),
        F.call("sum", F.call("exp", F.V("w", (2,)))),
        F.call("sum", F.call("multiply", F.V("w", (2,)), F.V("w", (2,)))),
    ):
        with pytest.raises(NotQuadratic):
            quadratic_form(expr, vars_, {})
    with pytest.raises(NotQuadratic):
        linear_constraints((F.IRConstraint(F.call("square", F.V("w", (2,))), "<=", F.C(1.0)),), vars_, {})
