"""The penalty rule (catopt_dsl/solver/rho.py): the secant curvature, its safeguards, and
iteration counts that do not grow with the number of members."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver import SolveOptions, solve, solve_centralized
from catopt_dsl.solver.rho import (
    CURVATURE_BAND,
    RHO_MOVE,
    Secant,
    balance_residuals,
    multiplier_estimate,
    next_rho,
    secant_curvature,
)


def consensus_family(folder: Path, members: int, dim: int = 5, offset: float = 0.0, seed: int = 0) -> IRPlan:
    """``minimize sum_squares(w - t_i)`` per member, ``site[*].w == model.w``: the family whose
    members' optima scatter around ``offset`` (the consensus is their mean)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    np.save(folder / "t.npy", rng.normal(size=(members, dim)) + offset)
    spec = folder / f"family_{members}.cat"
    spec.write_text(
        "catopt 1;\n"
        f"SharedVariables model {{ var w: float[{dim}]; }}\n"
        f"LocalProblem site[i in 0..{members - 1}] {{\n"
        f'  param t: float[{dim}] = load("t.npy")[i];\n'
        f"  var w: float[{dim}];\n"
        "  minimize sum_squares(w - t);\n"
        "}\n"
        "Limit agree on model { site[*].w == model.w; }\n"
        "Colimit plan of model;\n",
        encoding="utf-8",
    )
    return load_plan(spec)


# -- the secant --------------------------------------------------------------------------------


@pytest.mark.parametrize("kappa", [0.01, 2.0, 37.5])
def test_the_secant_reads_the_curvature_of_every_link(kappa: float) -> None:
    """yhat = -kappa (a - c) for f = kappa/2 ||x - c||^2: the secant is kappa whatever moves."""
    rng = np.random.default_rng(1)
    c = rng.normal(size=300)
    a0, a1 = rng.normal(size=300), rng.normal(size=300)
    got = secant_curvature(Secant(a0, -kappa * (a0 - c)), Secant(a1, -kappa * (a1 - c)))
    assert got == pytest.approx(kappa, rel=1e-12)


def test_the_secant_is_a_ratio_of_sums_over_links() -> None:
    """Twice the members (each with its own motion) and the estimate is unchanged."""
    rng = np.random.default_rng(2)
    H = np.diag([1.0, 4.0, 9.0])
    one = [rng.normal(size=3) for _ in range(2)]
    pair = [np.concatenate([x, x]) for x in one]
    Hpair = np.kron(np.eye(2), H)
    single = secant_curvature(Secant(one[0], -H @ one[0]), Secant(one[1], -H @ one[1]))
    double = secant_curvature(Secant(pair[0], -Hpair @ pair[0]), Secant(pair[1], -Hpair @ pair[1]))
    assert single is not None and double == pytest.approx(single, rel=1e-12)


def test_the_secant_says_nothing_when_it_cannot() -> None:
    a0, a1 = np.array([1.0, 2.0]), np.array([2.0, 0.0])
    y = np.array([3.0, -1.0])
    assert secant_curvature(Secant(a0, y), Secant(a1, y.copy())) is None  # linear objective: yhat does not move
    assert secant_curvature(Secant(a0, y), Secant(a0.copy(), 2 * y)) is None  # rows settle, duals grow
    assert secant_curvature(Secant(a0, -a0), Secant(a1, a1)) is None  # anti-correlated: not a curvature
    assert secant_curvature(Secant(a0, -1e-9 * a0), Secant(a1, -1e-9 * a1)) is None  # below RHO_MIN
    assert secant_curvature(Secant(a0, np.array([np.inf, 0.0])), Secant(a1, y)) is None


def test_multiplier_estimate_is_the_prox_gradient() -> None:
    """For f = kappa/2 ||x - c||^2 and the x-update at (t, u): yhat = -grad f(x)."""
    rng = np.random.default_rng(3)
    kappa, rho = 3.0, 0.7
    c, t, u = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    x = (kappa * c + rho * (t - u)) / (kappa + rho)  # argmin f + rho/2 ||x - t + u||^2
    np.testing.assert_allclose(multiplier_estimate(rho, x, t, u), -kappa * (x - c), atol=1e-12)


# -- the rule ----------------------------------------------------------------------------------


def test_next_rho_follows_the_curvature_outside_its_band() -> None:
    args = (1.0, 1.0, 1.0, 0.0, False)  # residuals that would leave rho alone
    assert next_rho(10.0, 2.0, *args) == 2.0
    assert next_rho(0.1, 2.0, *args) == 2.0
    assert next_rho(2.0 * CURVATURE_BAND * 0.99, 2.0, *args) == pytest.approx(2.0 * CURVATURE_BAND * 0.99)
    assert next_rho(1.0, 2.0, *args) == 2.0  # rho 1 against sum_squares' curvature 2: not a tie


def test_next_rho_falls_back_to_residual_balancing_with_its_gate() -> None:
    # a large primal residual: balancing asks for 100x, more than the gate
    assert next_rho(1.0, None, 1.0, 1e-4, 1.0, 0.0, False) == pytest.approx(100.0)
    # a small imbalance: inside the 5x gate, rho stays
    assert next_rho(1.0, None, 1.0, 0.25, 1.0, 0.0, False) == 1.0
    assert balance_residuals(1.0, 1.0, 0.25, 1.0, 0.0, False) < RHO_MOVE


def test_iterations_do_not_grow_with_the_family(tmp_path: Path) -> None:
    """Residual balancing alone took 59 iterations at 20 members and 180 at 200 on this family."""
    counts = {}
    for n in (20, 200):
        result = solve(consensus_family(tmp_path / str(n), n), SolveOptions())
        assert result.status == "optimal"
        counts[n] = result.iterations
    assert max(counts.values()) < 2 * min(counts.values()) and max(counts.values()) <= 30, counts


def test_fixed_rho_keeps_rho(tmp_path: Path) -> None:
    result = solve(consensus_family(tmp_path, 20), SolveOptions(rho=0.5, adaptive_rho=False))
    assert result.status == "optimal"
    assert {row["rho"] for row in result.history} == {0.5}


@pytest.mark.slow
def test_issue_sizes_reach_the_tolerance_in_flat_iterations_with_the_centralised_answer(tmp_path: Path) -> None:
    """20, 200 and 2,000 members (centred and offset optima), and the benchmark lasso at 8, 64 and
    512 sites: the default tolerance in iteration counts within 2x, at the centralised optimum."""
    from benchmarks.specgen_solver import lasso_plan

    families = {
        "centred": [consensus_family(tmp_path / f"c{n}", n) for n in (20, 200, 2000)],
        "offset": [consensus_family(tmp_path / f"o{n}", n, offset=3.0) for n in (20, 200, 2000)],
        "lasso": [lasso_plan(tmp_path / f"lasso{n}", n) for n in (8, 64, 512)],
    }
    for name, plans in families.items():
        counts = []
        for plan in plans:
            got = solve(plan, SolveOptions())
            ref = solve_centralized(plan)
            assert got.status == ref.status == "optimal"
            assert got.objective == pytest.approx(ref.objective, rel=1e-5)
            np.testing.assert_allclose(got.shared["model"]["w"], ref.shared["model"]["w"], atol=1e-3)
            counts.append(got.iterations)
        assert max(counts) < 2 * min(counts), (name, counts)
