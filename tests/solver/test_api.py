"""Public API: to_json, colimit filtering, warm start across a plan delta, progress, plot."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import factories as F
from catopt_dsl.solver import SolveOptions, SolveResult, solve, solve_centralized
from catopt_dsl.plotting import plot_history
from catopt_dsl.solver.progress import ProgressPrinter


def test_to_json_shape_and_determinism() -> None:
    plan = F.mixed()
    result = solve(plan)
    doc = result.to_json()
    assert list(doc) == sorted(doc)
    assert set(doc) == {
        "status", "objective", "iterations", "primal_residual", "dual_residual", "solve_time_s", "objects", "shared",
    "message", "warnings", "prices", "local_solvers", "membership",
    }  # fmt: skip
    summary = doc["local_solvers"]
    assert set(summary) == {"classes", "methods", "cvxpy", "fallbacks"}
    assert sum(summary["classes"].values()) == sum(summary["methods"].values()) == len(plan.objects)
    assert doc["status"] == "optimal"
    assert isinstance(doc["objective"], float) and isinstance(doc["iterations"], int)
    assert list(doc["objects"]) == sorted(doc["objects"]) == ["m0", "m1", "m2"]
    assert list(doc["objects"]["m0"]) == ["load", "w"]
    assert isinstance(doc["objects"]["m0"]["load"], float)
    assert len(doc["objects"]["m0"]["w"]) == 3
    np.testing.assert_allclose(doc["shared"]["model"]["w"], result.shared["model"]["w"])
    text = json.dumps(doc, sort_keys=True)
    again = solve(plan).to_json()
    doc.pop("solve_time_s"), again.pop("solve_time_s")
    assert json.dumps(again, sort_keys=True) == json.dumps(doc, sort_keys=True)
    assert json.loads(text)["status"] == "optimal"


def test_matrix_var_round_trips_as_nested_lists() -> None:
    result = SolveResult("optimal", 1.0, 3, 0.0, 0.0, 0.1, {"o": {"m": np.arange(6.0).reshape(2, 3)}}, {})
    assert result.to_json()["objects"]["o"]["m"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_colimit_filters_shared_blocks() -> None:
    base = F.consensus_regression(tenants=2)
    extra = F.shared("unused", [("q", (2,))])
    plan = F.plan(
        "colim", list(base.objects), [*base.shared, extra], list(base.consensus), colimit=("model",)
    )
    for result in (solve(plan), solve_centralized(plan)):
        assert result.status == "optimal"
        assert set(result.shared) == {"model"}
        assert set(result.objects) == {"tenant_0", "tenant_1"}
    open_plan = F.plan("open", list(base.objects), [*base.shared, extra], list(base.consensus))
    assert set(solve(open_plan).shared) == {"model", "unused"}


def test_warm_start_across_a_delta() -> None:
    """A delta adds tenant_4 and removes tenant_0: matched by name, new member starts from z."""
    full = F.consensus_regression(tenants=5, seed=11)
    before = F.plan("before", list(full.objects[:4]), list(full.shared), list(full.consensus[:4]))
    after = F.plan("after", list(full.objects[1:]), list(full.shared), list(full.consensus[1:]))
    opts = SolveOptions(eps_abs=1e-6, eps_rel=1e-6)
    first = solve(before, opts)
    assert first.status == "optimal" and first.state is not None
    assert set(first.state.x) == {f"tenant_{i}" for i in range(4)}
    warm = solve(after, opts, warm_start=first.state)
    cold = solve(after, opts)
    cent = solve_centralized(after)
    assert warm.status == cold.status == "optimal"
    assert warm.objective == pytest.approx(cent.objective, rel=1e-4)
    assert warm.iterations <= cold.iterations
    # same plan, warm from its own optimum: (almost) immediate
    again = solve(after, opts, warm_start=warm.state)
    assert again.status == "optimal" and again.iterations <= 3


def test_warm_state_new_member_starts_from_z() -> None:
    from catopt_dsl.solver import Coordinator, build_layout

    full = F.consensus_regression(tenants=3, seed=12)
    before = F.plan("b", list(full.objects[:2]), list(full.shared), list(full.consensus[:2]))
    state = solve(before).state
    assert state is not None
    layout = build_layout(full)
    coord = Coordinator(layout, SolveOptions(), state)
    new_rows = layout.object_rows("tenant_2").rows
    np.testing.assert_allclose(coord.t[new_rows], state.z["model"])
    np.testing.assert_allclose(coord.u[new_rows], 0.0)
    old_rows = layout.object_rows("tenant_0").rows
    key = layout.object_rows("tenant_0").blocks[0].key
    np.testing.assert_allclose(coord.u[old_rows], state.duals[key])
    assert coord.rho == state.rho


def test_progress_callback_and_printer() -> None:
    rows: list[dict[str, float]] = []
    result = solve(F.two_agree(), progress=rows.append)
    assert len(rows) == result.iterations == len(result.history)
    assert set(rows[0]) == {"iteration", "r_prim", "r_dual", "rho", "objective"}
    assert [r["iteration"] for r in rows] == list(range(1, len(rows) + 1))
    stream = io.StringIO()
    printer = ProgressPrinter(every=5, stream=stream)
    for row in result.history:
        printer(row)
    lines = stream.getvalue().splitlines()
    expected_rows = 1 + sum(1 for r in result.history if int(r["iteration"]) % 5 == 0 and r["iteration"] != 1)
    assert len(lines) == 1 + expected_rows
    assert lines[0].split() == ["iter", "r_prim", "r_dual", "rho", "objective"]
    assert int(lines[1].split()[0]) == 1


def test_plot_history_writes_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    result = solve(F.two_agree())
    out = plot_history(result, tmp_path / "hist.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot_history(solve_centralized(F.two_agree()), tmp_path / "none.png")


def test_adaptive_rho_rescales_duals() -> None:
    """rho moves by more than the curvature band (1.9x; 5x when residual balancing decides), stays
    within [1e-6, 1e6], and the solve still converges."""
    result = solve(F.consensus_regression(seed=3), SolveOptions(rho=1e-3))
    # history rows hold rho after each iteration's adaptation checkpoint (iteration 1 is one)
    rhos = [1e-3] + [row["rho"] for row in result.history]
    assert max(rhos) > 5e-3
    assert all(1e-6 <= r <= 1e6 for r in rhos)
    changes = [i for i in range(1, len(rhos)) if rhos[i] != rhos[i - 1]]
    assert changes and all(rhos[i] / rhos[i - 1] > 1.9 or rhos[i - 1] / rhos[i] > 1.9 for i in changes)
    assert result.status == "optimal"
