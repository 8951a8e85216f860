"""The native backends' local QPs (catopt_dsl.backends.native.local_qp): the data each QP object's
generated solver gets reproduces the object's objective and constraint set exactly, the objects
that are not QPs are named, and `catoptc compile` says which need a user LocalSolver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from catopt_dsl.backends.native import local_qp, needs_local_solver
from catopt_dsl.cli import main
from catopt_dsl.compile import load_plan
from catopt_dsl.ir.evaluate import evaluate
from catopt_dsl.solver import solve_centralized

ROOT = Path(__file__).resolve().parents[2]


def test_qp_data_reproduces_objective_and_constraints() -> None:
    """At the centralised optimum and at random points: 1/2 x'Px + q'x + r equals the IR objective
    (the IR holds it in minimise form), and l <= A x <= u holds exactly when every IR constraint holds."""
    plan = load_plan(ROOT / "tests/cases/native/qp_active.cat")
    result = solve_centralized(plan)
    rng = np.random.default_rng(0)
    for obj in plan.objects:
        qp = local_qp(plan, obj)
        assert qp is not None
        params = {p.name: p.value for p in obj.params}
        points = [np.concatenate([np.ravel(result.objects[obj.name][v.name]) for v in obj.vars])]
        points += [rng.normal(scale=2.0, size=obj.n) for _ in range(20)]
        for x in points:
            values = {v.name: x[v.offset : v.offset + v.size].reshape(v.shape) for v in obj.vars}
            f = float(evaluate(obj.objective, values, params))
            assert np.isclose(0.5 * x @ qp.P @ x + qp.q @ x + qp.r, f, rtol=1e-12, atol=1e-12)
            ax = qp.A @ x
            inside = bool(np.all(ax >= qp.l - 1e-9) and np.all(ax <= qp.u + 1e-9))
            holds = all(bool(np.all(evaluate_constraint(c, values, params))) for c in obj.constraints)
            assert inside == holds
    a = local_qp(plan, plan.objects[0])
    assert a is not None
    # one equality row, one bound (x[1] >= 0.2), two general inequalities
    assert int(np.sum(a.l == a.u)) == 1 and a.A.shape == (4, 5)


def evaluate_constraint(c: object, values: dict, params: dict) -> np.ndarray:
    from catopt_dsl.ir.model import IRConstraint

    assert isinstance(c, IRConstraint)
    lhs = np.asarray(evaluate(c.lhs, values, params), dtype=float)
    rhs = np.asarray(evaluate(c.rhs, values, params), dtype=float)
    tol = 1e-9 * (1 + np.abs(rhs))
    if c.op == "<=":
        return lhs <= rhs + tol
    if c.op == ">=":
        return lhs >= rhs - tol
    return np.abs(lhs - rhs) <= tol


def test_objects_that_are_not_qps_are_named() -> None:
    logreg = load_plan(ROOT / "examples/federated_logreg.cat")
    assert needs_local_solver(logreg) == [o.name for o in logreg.objects]
    assert all(local_qp(logreg, o) is None for o in logreg.objects)
    assert needs_local_solver(load_plan(ROOT / "examples/gpu_fleet.cat")) == []


def test_compile_notes_the_objects_that_need_a_local_solver(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["compile", str(ROOT / "examples/federated_logreg.cat"), "--target", "cpp", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "note: not QPs" in res.output and "`site[7]`" in res.output
    # and the generated declaration lists them for the reader
    header = (tmp_path / "cpp" / "federated_logreg.hpp").read_text()
    assert "Not QPs (give each a LocalSolver): `site[0]`" in header
    res = CliRunner().invoke(main, ["compile", str(ROOT / "examples/gpu_fleet.cat"), "--target", "rust", "--out", str(tmp_path / "g")])
    assert res.exit_code == 0 and "note:" not in res.output
