"""Acceptance C: infeasible plans are never reported optimal (and the centralised check agrees)."""

from __future__ import annotations

import numpy as np
import pytest

import factories as F
from catopt_dsl.solver import SolveOptions, solve, solve_centralized


def _ge_infeasible():
    """Upper bounds 1 + 1 < required 5: ``x_i <= 1`` and ``x1 + x2 >= 5``."""
    objects, terms = [], []
    for i in range(2):
        o = F.obj(f"t{i}", [("x", ())], F.call("sum_squares", F.V("x")), [(F.V("x"), "<=", F.C(1.0))])
        objects.append(o)
        terms.append(F.var_term(o, "x", "need"))
    s = F.shared("pool", [("p", ())])
    return F.plan("ge_infeasible", objects, [s], [], [F.coupling("need", "pool", ">=", 5.0, terms)])


@pytest.mark.parametrize("factory", [F.infeasible_coupling, _ge_infeasible])
def test_infeasible_coupling(factory) -> None:
    plan = factory()
    result = solve(plan, SolveOptions(max_iter=400))
    assert result.status in ("infeasible", "max_iterations")
    assert result.status != "optimal"
    # our certificate is verified, so for these it must be found
    assert result.status == "infeasible", result.message
    assert plan.couplings[0].name in result.message
    assert result.objective is None
    assert solve_centralized(plan).status == "infeasible"


def test_infeasible_local_problem_names_the_object() -> None:
    plan = F.infeasible_local()
    result = solve(plan)
    assert result.status == "infeasible"
    assert "`bad`" in result.message and "infeasible" in result.message
    assert solve_centralized(plan).status == "infeasible"


def test_infeasible_local_equalities_on_the_fast_path_candidate() -> None:
    """Contradictory linear equalities are not taken by the fast path; CVXPY certifies them."""
    bad = F.obj(
        "eq_bad",
        [("x", (2,))],
        F.call("sum_squares", F.V("x", (2,))),
        [(F.call("sum", F.V("x", (2,))), "==", F.C(1.0)), (F.call("sum", F.V("x", (2,))), "==", F.C(2.0))],
    )
    s = F.shared("S", [("w", (2,))])
    plan = F.plan("eq_bad", [bad], [s], [F.link(bad, "x", s, "w")])
    result = solve(plan)
    assert result.status == "infeasible"
    assert "eq_bad" in result.message


def test_feasible_tight_coupling_is_not_flagged() -> None:
    """Sum of lower bounds == capacity: feasible (a single point); must not be called infeasible."""
    objects, terms = [], []
    for i, lb in enumerate((2.0, 2.0)):
        o = F.obj(
            f"t{i}",
            [("x", ())],
            F.call("sum_squares", F.sub(F.V("x"), F.C(5.0))),
            [(F.V("x"), ">=", F.C(lb))],
        )
        objects.append(o)
        terms.append(F.var_term(o, "x", "cap"))
    s = F.shared("pool", [("p", ())])
    plan = F.plan("tight", objects, [s], [], [F.coupling("cap", "pool", "<=", 4.0, terms)])
    result = solve(plan, SolveOptions(max_iter=3000))
    assert result.status in ("optimal", "max_iterations")
    assert solve_centralized(plan).status == "optimal"
    if result.status == "optimal":
        np.testing.assert_allclose(
            [result.objects["t0"]["x"], result.objects["t1"]["x"]], [2.0, 2.0], atol=1e-2
        )


def test_unbounded_local_problem() -> None:
    ok = F.obj("ok", [("x", ())], F.call("sum_squares", F.V("x")))
    free = F.obj("free", [("y", (2,))], F.call("sum", F.V("y", (2,))))
    s = F.shared("S", [("w", ())])
    plan = F.plan("unb", [ok, free], [s], [F.link(ok, "x", s, "w")])
    result = solve(plan)
    assert result.status == "unbounded"
    assert "free" in result.message
    assert solve_centralized(plan).status == "unbounded"


def test_local_solver_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import catopt_dsl.solver.worker as worker

    monkeypatch.setattr(worker, "solve_problem", lambda problem, warm=True: ("solver_error (boom)", 0))
    plan = F.consensus_regression(cvxpy_terms=True)
    result = solve(plan)
    assert result.status == "local_solver_failed"
    assert "tenant_0" in result.message and "solver_error" in result.message


def test_consensus_against_shared_constraints_is_never_optimal() -> None:
    """Local ``x >= 2`` linked to a shared ``w <= 1``: infeasible through a consensus link."""
    o = F.obj("o", [("x", ())], F.call("sum_squares", F.V("x")), [(F.V("x"), ">=", F.C(2.0))])
    s = F.shared("S", [("w", ())], None, [(F.V("w"), "<=", F.C(1.0))])
    plan = F.plan("clash", [o], [s], [F.link(o, "x", s, "w")])
    result = solve(plan, SolveOptions(max_iter=150))
    assert result.status in ("infeasible", "max_iterations")
    assert solve_centralized(plan).status == "infeasible"
