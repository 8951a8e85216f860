"""Acceptance A: two objects agreeing on one scalar, checked step by step against hand formulas.

f_i(x) = (x - a_i)^2, no g, rho = 1 fixed, alpha = 1. By hand:
x_i = (2 a_i + rho (z - u_i)) / (2 + rho);  z = mean_i(x_i + u_i);  u_i += x_i - z;
r_prim = max_i |x_i - z|;  r_dual = rho |z - z_prev|.
"""

from __future__ import annotations

import numpy as np
import pytest

import factories as F
from catopt_dsl.solver import LocalReport, Coordinator, SolveOptions, build_layout, build_workers, solve

A1, A2, RHO = 1.0, 3.0, 1.0


def hand_iterations(k: int) -> list[dict[str, float]]:
    z, u = 0.0, np.zeros(2)
    a = np.array([A1, A2])
    out = []
    for _ in range(k):
        x = (2 * a + RHO * (z - u)) / (2 + RHO)
        z_new = float(np.mean(x + u))
        u = u + x - z_new
        out.append(
            {
                "x": x.copy(),
                "z": z_new,
                "u": u.copy(),
                "r_prim": float(np.max(np.abs(x - z_new))),
                "r_dual": RHO * abs(z_new - z),
                "objective": float(np.sum((x - a) ** 2)),
            }
        )
        z = z_new
    return out


OPTS = dict(rho=RHO, alpha=1.0, adaptive_rho=False, eps_abs=1e-12, eps_rel=1e-12)


@pytest.mark.parametrize("fast_path", [True, False])
def test_components_step_by_step(fast_path: bool) -> None:
    plan = F.two_agree(A1, A2)
    opts = SolveOptions(fast_path=fast_path, **OPTS)
    layout = build_layout(plan)
    workers = build_workers(layout, opts)
    assert [w.fast for w in workers] == [fast_path, fast_path]
    coord = Coordinator(layout, opts)
    bc = coord.first_iterate()
    for k, expect in enumerate(hand_iterations(3), start=1):
        # the broadcast centres are d_i = z - u_i
        xs = np.array([w.step(bc.centres[w.name], bc.rho)[0] for w in workers])
        np.testing.assert_allclose(xs, expect["x"], atol=1e-7)
        contribs: dict[str, LocalReport] = {w.name: w.contribution() for w in workers}
        np.testing.assert_allclose([contribs[w.name].a[0] for w in workers], expect["x"], atol=1e-7)
        bc = coord.update(contribs)
        assert bc.iteration == k
        np.testing.assert_allclose(coord.z["S"], [expect["z"]], atol=1e-7)
        np.testing.assert_allclose(coord.u, expect["u"], atol=1e-7)
        assert bc.r_prim == pytest.approx(expect["r_prim"], abs=1e-7)
        assert bc.r_dual == pytest.approx(expect["r_dual"], abs=1e-7)
        assert bc.objective == pytest.approx(expect["objective"], abs=1e-7)
        np.testing.assert_allclose(
            [bc.centres["p1"][0], bc.centres["p2"][0]], expect["z"] - expect["u"], atol=1e-7
        )


def test_solve_history_matches_hand_values() -> None:
    plan = F.two_agree(A1, A2)
    result = solve(plan, SolveOptions(max_iter=3, **OPTS))
    assert result.status == "max_iterations"
    assert result.iterations == 3
    hand = hand_iterations(3)
    for row, expect in zip(result.history, hand):
        assert row["r_prim"] == pytest.approx(expect["r_prim"], abs=1e-9)
        assert row["r_dual"] == pytest.approx(expect["r_dual"], abs=1e-9)
        assert row["objective"] == pytest.approx(expect["objective"], abs=1e-9)
        assert row["rho"] == RHO
    # The reported solution is glued along the consensus link: each linked local var reports z.
    assert result.objects["p1"]["x"] == pytest.approx(hand[-1]["z"], abs=1e-9)
    assert result.shared["S"]["w"] == pytest.approx(hand[-1]["z"], abs=1e-9)


def test_over_relaxation_changes_the_z_update() -> None:
    """With alpha != 1 the z-update averages h = alpha x + (1 - alpha) z_prev (one step by hand)."""
    plan = F.two_agree(A1, A2)
    alpha = 1.6
    result = solve(plan, SolveOptions(max_iter=1, rho=RHO, alpha=alpha, adaptive_rho=False))
    x = (2 * np.array([A1, A2])) / (2 + RHO)
    h = alpha * x + (1 - alpha) * 0.0
    assert result.shared["S"]["w"] == pytest.approx(float(np.mean(h)), abs=1e-9)
    assert result.state is not None
    np.testing.assert_allclose(
        [result.state.duals[k][0] for k in sorted(result.state.duals)], h - np.mean(h), atol=1e-9
    )


def test_converges_to_the_average() -> None:
    result = solve(F.two_agree(A1, A2))
    assert result.status == "optimal"
    assert result.shared["S"]["w"] == pytest.approx((A1 + A2) / 2, abs=1e-4)
    assert result.objective == pytest.approx(((A2 - A1) / 2) ** 2 * 2, rel=1e-4)
