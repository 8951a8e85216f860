"""Every local method against CVXPY: the x-update of random instances at several rho, to 1e-7,
with active inequalities, equality rows and degenerate sets (no rows, no constraints, one point)."""

from __future__ import annotations

from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver import (
    SolveOptions,
    build_layout,
    build_workers,
    solve,
    solve_centralized,
)
from catopt_dsl.solver.local.kkt import KKTSolver, _spd_inverse
from catopt_dsl.solver.worker import FastBatch, LocalWorker

RHOS = (0.1, 1.0, 10.0)
EXP_CONE = {"logistic", "exp", "log", "log_sum_exp"}
TIGHT = SolveOptions(eps_abs=1e-10, eps_rel=1e-10)


def plan_with(tmp: Path, body: str, members: int = 3, n: int = 4, params: str = "", seed: int = 0, link: bool = True) -> IRPlan:
    """A family of ``members`` objects with ``var x: float[n]`` and the given body, each linked to
    a shared ``x`` (rows M = I) when ``link``; params ``P: float[n, n]``, ``c``, ``a`` are random."""
    rng = np.random.default_rng(seed)
    tmp.mkdir(parents=True, exist_ok=True)
    A = rng.normal(size=(members, 6, n))
    np.save(tmp / "A.npy", A)
    np.save(tmp / "b.npy", rng.normal(size=(members, 6)))
    np.save(tmp / "c.npy", rng.normal(size=(members, n)))
    np.save(tmp / "v.npy", rng.uniform(0.5, 2.0, size=(members, n)))
    B = rng.normal(size=(members, n, n))
    np.save(tmp / "P.npy", np.einsum("kij,klj->kil", B, B) + np.eye(n))
    text = (
        "catopt 1;\n"
        f"SharedVariables model {{ var x: float[{n}]; }}\n"
        f"LocalProblem site[i in 0..{members - 1}] {{\n"
        f'  param A: float[6, {n}] = load("A.npy")[i];\n'
        f'  param b: float[6] = load("b.npy")[i];\n'
        f'  param c: float[{n}] = load("c.npy")[i];\n'
        f'  param v: float[{n}] = load("v.npy")[i];\n'
        f"  {params}\n"
        f"  var x: float[{n}];\n"
        f"  {body}\n"
        "}\n"
    )
    if link:
        text += "Limit agree on model { site[*].x == model.x; }\n"
    else:  # one linked object keeps the plan valid; the family has no rows
        text += f"LocalProblem anchor {{ var x: float[{n}]; minimize sum_squares(x); }}\n"
        text += "Limit agree on model { anchor.x == model.x; }\n"
    text += "Colimit plan of model;\n"
    (tmp / "p.cat").write_text(text, encoding="utf-8")
    return load_plan(tmp / "p.cat")


def reference(w: LocalWorker, d: np.ndarray, rho: float) -> tuple[np.ndarray, bool, float]:
    """The x-update solved by CVXPY (Clarabel, tight tolerances): x, whether CVXPY called it
    accurate, and its prox objective."""
    xv, f, cons = w._model()
    objective = f + rho / 2 * cp.sum_squares(w.M @ xv - d) if w.r else f
    problem = cp.Problem(cp.Minimize(objective), cons)
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11, max_iter=500)
    assert problem.status in ("optimal", "optimal_inaccurate"), problem.status
    return np.asarray(xv.value), problem.status == "optimal", float(problem.value)


def prox_value(w: LocalWorker, x: np.ndarray, d: np.ndarray, rho: float) -> float:
    """The prox objective at x, after checking x satisfies the object's constraints."""
    xv, f, cons = w._model()
    xv.value = x
    for con in cons:
        assert float(np.max(con.violation(), initial=0.0)) <= 1e-9
    return float(f.value) + (rho / 2 * float(np.sum((w.M @ x - d) ** 2)) if w.r else 0.0)


def check(plan: IRPlan, method: str, scale: float = 1.0, atol: float = 1e-7) -> None:
    workers = [w for w in build_workers(build_layout(plan), TIGHT) if w.name.startswith("site")]
    assert workers and all(w.method == method for w in workers), [(w.method, w.method_reason) for w in workers]
    rng = np.random.default_rng(11)
    batch = FastBatch(workers)
    for rho in RHOS:
        centres = {w.name: rng.normal(scale=scale, size=w.r) for w in workers}
        for _ in range(2):  # the second step from the first: the tolerance of a settled iterate
            batch.step_all(centres, rho)
        for w in workers:
            assert w.fallbacks == 0, w.fallback_reason
            d = centres[w.name]
            want, accurate, best = reference(w, d, rho)
            # Clarabel reaches 1e-7 on quadratic and polyhedral problems; with exponential cones
            # (logistic, exp, log, log_sum_exp) it stops around 1e-6 away: there the local answer
            # must be at least as good as CVXPY's (feasible, no larger prox objective) and within 1e-5
            form = w.analysis.form
            cones = form is not None and any(t.atom in EXP_CONE for t in form.terms)
            tol = atol if accurate and not cones else 1e-5
            np.testing.assert_allclose(w.x, want, atol=tol, rtol=tol, err_msg=f"{method} rho={rho} {w.name}")
            assert prox_value(w, w.x, d, rho) <= best + 1e-9 * max(1.0, abs(best))


# -- kkt and clip --------------------------------------------------------------------------------


def test_kkt_with_equality_rows(tmp_path: Path) -> None:
    check(plan_with(tmp_path, "minimize sum_squares(A @ x - b) + dot(c, x); subject to { sum(x) == 1; x[0] == x[1]; }"), "kkt")


def test_kkt_on_a_single_point(tmp_path: Path) -> None:
    check(plan_with(tmp_path, "minimize dot(c, x); subject to { x == v; }"), "kkt")


def test_kkt_without_rows_or_constraints(tmp_path: Path) -> None:
    check(plan_with(tmp_path, "minimize sum_squares(A @ x - b);", link=False), "kkt")


def test_kkt_with_consensus_rows_and_no_equalities(tmp_path: Path) -> None:
    # the positive definite path: maps from the Cholesky-based inverse
    check(plan_with(tmp_path, "minimize sum_squares(A @ x - b) + dot(c, x);", n=6), "kkt")


@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_spd_inverse_is_the_inverse(n: int) -> None:
    rng = np.random.default_rng(n)
    B = rng.normal(size=(50, n, n))
    K = np.einsum("kij,klj->kil", B, B) + 1e-3 * np.eye(n)
    inv = _spd_inverse(K)
    assert inv is not None
    np.testing.assert_allclose(np.matmul(inv, K), np.broadcast_to(np.eye(n), K.shape), atol=1e-8)
    np.testing.assert_allclose(inv, np.linalg.inv(K), rtol=1e-8, atol=1e-10)


def test_spd_inverse_declines_what_it_cannot_factor() -> None:
    K = np.stack([np.eye(3), np.diag([1.0, -1.0, 2.0])])  # the second is indefinite
    assert _spd_inverse(K) is None
    N = np.stack([np.eye(3), np.eye(3)])
    N[1, 0, 2] = 0.5  # not symmetric: a Cholesky factor would read one triangle only
    assert _spd_inverse(N) is None


def test_kkt_maps_without_equalities_are_the_lu_maps(tmp_path: Path) -> None:
    plan = plan_with(tmp_path, "minimize sum_squares(A @ x - b) + dot(c, x);", members=5, n=5)
    (w, *_) = build_workers(build_layout(plan), TIGHT)
    solver = w._solver
    assert isinstance(solver, KKTSolver) and solver.data.selection is not None
    for rho in (0.01, 1.0, 300.0):
        solver.prepare(rho)
        K = solver.P + rho * solver.MtM
        want_L = np.linalg.solve(K, np.broadcast_to(rho * solver.data.template.T, (5, 5, 5)))
        want_C0 = np.linalg.solve(K, -solver.q[:, :, None])[:, :, 0]
        np.testing.assert_allclose(solver.L, want_L, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(solver.C0, want_C0, rtol=1e-10, atol=1e-12)


def test_clip_with_active_bounds(tmp_path: Path) -> None:
    check(plan_with(tmp_path, "minimize sum_squares(multiply(v, x) - c); subject to { x >= 0; x <= 1; }"), "clip", scale=3.0)


# -- coord and newton -------------------------------------------------------------------------------


def test_coord_log_utilities_with_active_bounds(tmp_path: Path) -> None:
    body = "maximize sum(multiply(v, log(x + 1.0))) - 0.1 * sum_squares(x); subject to { x >= 0; x <= 2; }"
    check(plan_with(tmp_path, body), "coord", scale=3.0)


@pytest.mark.parametrize(
    "objective",
    [
        "sum(logistic(A @ x - b))",
        "sum(huber(A @ x - b, 0.5))",
        "log_sum_exp(A @ x - b) + 0.1 * sum_squares(x)",
        "sum(exp(0.3 * (A @ x))) - dot(c, x)",
    ],
)
def test_newton_smooth_terms(tmp_path: Path, objective: str) -> None:
    check(plan_with(tmp_path, f"minimize {objective};"), "newton")


def test_newton_with_equality_rows(tmp_path: Path) -> None:
    check(plan_with(tmp_path, "minimize sum(logistic(A @ x - b)); subject to { sum(x) == 1; }"), "newton")


def test_newton_on_a_single_point(tmp_path: Path) -> None:
    check(plan_with(tmp_path, "minimize sum(logistic(A @ x)); subject to { x == v; }"), "newton")


# -- split ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "constraints",
    [
        "sum(x) <= 0.5; x >= -1;",  # a general row, active
        "abs(x[1:] - x[:-1]) <= 0.2; x <= 1;",  # lifted ramp rows, merged pairs
        "sum(x) == 1; abs(x) <= 0.6;",  # an equality row and lifted abs rows
        "norm_inf(x - 0.5 * v) <= 0.3; max(x) <= 1; sum(x) >= 1;",  # lifted reducing atoms
        "x >= v; x <= v; sum(x) <= 100;",  # one point, written as bounds
    ],
)
def test_split_quadratic_with_inequalities(tmp_path: Path, constraints: str) -> None:
    check(plan_with(tmp_path, f"minimize sum_squares(A @ x - b) + dot(c, x); subject to {{ {constraints} }}"), "split", scale=2.0)


@pytest.mark.parametrize(
    "term",
    [
        "norm1(A @ x - b)",
        "norm2(x - v)",
        "norm_inf(A @ x)",
        "sum(abs(x - c))",
        "sum(pos(A @ x - b)) + sum(neg(x))",
        "max(A @ x)",
    ],
)
def test_split_prox_terms(tmp_path: Path, term: str) -> None:
    check(plan_with(tmp_path, f"minimize 0.5 * sum_squares(x) + {term};"), "split", scale=2.0)


@pytest.mark.parametrize(
    "body",
    [
        "minimize sum_squares(A @ x - b) + norm1(x); subject to { sum(x) >= 0.5; x <= 1; }",
        # smooth, but under a general inequality: split, through huber's prox
        "minimize 0.5 * sum_squares(x) + sum(huber(A @ x - b, 0.3)); subject to { sum(x) <= 0.5; }",
    ],
)
def test_split_prox_terms_with_constraints(tmp_path: Path, body: str) -> None:
    check(plan_with(tmp_path, body), "split", scale=2.0)


# -- whole solves and honest failures -----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "minimize sum(logistic(A @ x - b));",
        "minimize sum_squares(A @ x - b) + norm1(x); subject to { sum(x) <= 0.5; }",
        "minimize sum_squares(A @ x - b); subject to { abs(x[1:] - x[:-1]) <= 0.1; }",
    ],
)
def test_solves_agree_with_the_centralised_solve(tmp_path: Path, body: str) -> None:
    plan = plan_with(tmp_path, body, members=5)
    got, ref = solve(plan), solve_centralized(plan)
    assert got.status == ref.status == "optimal"
    assert got.objective == pytest.approx(ref.objective, rel=1e-5, abs=1e-7)


def test_local_infeasibility_is_reported_with_the_object(tmp_path: Path) -> None:
    """Constraints that cannot all hold: rows whose bounds cross go to CVXPY from the start; a set
    that is empty only jointly makes the inner ADMM fail its step; CVXPY says `infeasible` either way."""
    crossed = plan_with(tmp_path / "a", "minimize sum_squares(x); subject to { sum(x) >= 2; sum(x) <= 1; }")
    joint = plan_with(tmp_path / "b", "minimize sum_squares(x); subject to { x[0] + x[1] >= 2; x <= 0.5; }")
    workers = [w for w in build_workers(build_layout(crossed), SolveOptions()) if w.name.startswith("site")]
    assert all(w.method == "cvxpy" and "lower > upper" in w.method_reason for w in workers)
    workers = [w for w in build_workers(build_layout(joint), SolveOptions()) if w.name.startswith("site")]
    assert all(w.method == "split" for w in workers)
    for plan in (crossed, joint):
        result = solve(plan)
        assert result.status == "infeasible" and "site[0]" in result.message, result.message


def test_a_failed_step_falls_back_to_cvxpy_and_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from catopt_dsl.solver.local import newton

    monkeypatch.setattr(newton, "NEWTON_MAX_ITER", 0)  # Newton never converges
    plan = plan_with(tmp_path, "minimize sum(logistic(A @ x - b));")
    result = solve(plan)
    ref = solve_centralized(plan)
    assert result.status == "optimal" and result.objective == pytest.approx(ref.objective, rel=1e-5)
    assert result.local_solvers is not None
    assert result.local_solvers["fallbacks"] == {f"site[{i}]": result.iterations for i in range(3)}


def test_a_cvxpy_family_shares_one_problem_only_when_every_param_stays_a_parameter(tmp_path: Path) -> None:
    """Members solved by CVXPY share one compiled problem with their params as parameters; a
    param CVXPY must read as a number (quad_form's matrix) would freeze the first member's value
    into everyone's problem, so that family compiles per member, and both give the right answer."""
    shared = plan_with(tmp_path / "a", "minimize sum_squares(A @ x - b) + sum(maximum(x, c));", members=4)
    own = plan_with(tmp_path / "b", "minimize quad_form(x - c, P) + sum(maximum(x, 0.1));", members=4,
                    params='param P: float[4, 4] = load("P.npy")[i];')
    for plan, expect in ((shared, True), (own, False)):
        workers = [w for w in build_workers(build_layout(plan), SolveOptions()) if w.name.startswith("site")]
        assert all(w.method == "cvxpy" for w in workers)
        family = workers[0]._family
        assert family is not None and family.dpp is expect
        got, ref = solve(plan), solve_centralized(plan)
        assert got.status == ref.status == "optimal"
        assert got.objective == pytest.approx(ref.objective, rel=1e-5)
