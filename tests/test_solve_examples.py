"""Issue acceptance: for every example the distributed and centralised solves agree (through the CLI),
and a plan the centralised solver calls infeasible is never reported `optimal`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.cat"))
CONTRACT_KEYS = {
    "status", "objective", "iterations", "primal_residual", "dual_residual", "solve_time_s", "objects", "shared",
    "message", "warnings", "prices", "membership", "local_solvers",
}


def _solve(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["solve", *args, "--json", "--quiet"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def _close(a: object, b: object, rel: float) -> float:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert x.shape == y.shape
    return float(np.max(np.abs(x - y)) / max(1.0, float(np.max(np.abs(y))))) if x.size else 0.0


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_distributed_agrees_with_centralized(spec: Path) -> None:
    code_d, dist = _solve(str(spec))
    code_c, cent = _solve(str(spec), "--centralized")
    assert set(dist) == CONTRACT_KEYS and set(cent) == CONTRACT_KEYS
    assert dist["status"] == cent["status"] == "optimal"
    assert code_d == code_c == 0
    assert isinstance(dist["iterations"], int) and cent["iterations"] is None
    assert cent["local_solvers"] is None
    summary = dist["local_solvers"]
    assert sum(summary["methods"].values()) == len(dist["objects"])
    assert summary["cvxpy"] == {} and summary["fallbacks"] == {}  # every example has a local method
    ref = cent["objective"]
    assert abs(dist["objective"] - ref) <= max(1e-4 * abs(ref), 1e-6), (dist["objective"], ref)
    assert set(dist["objects"]) == set(cent["objects"]) and set(dist["shared"]) == set(cent["shared"])
    for group in ("objects", "shared"):
        for name, vars_ in cent[group].items():
            for var, value in vars_.items():
                assert _close(dist[group][name][var], value, 1e-3) <= 1e-3, (group, name, var)


def test_no_adaptive_rho_keeps_the_given_rho() -> None:
    from catopt_dsl.compile import load_plan
    from catopt_dsl.solver import SolveOptions, solve

    spec = REPO / "examples" / "sites_200.cat"
    code, fixed = _solve(str(spec), "--no-adaptive-rho", "--rho", "0.5")
    _, adaptive = _solve(str(spec), "--rho", "0.5")
    assert code == 0 and fixed["status"] == adaptive["status"] == "optimal"
    assert fixed["iterations"] == solve(load_plan(spec), SolveOptions(rho=0.5, adaptive_rho=False)).iterations
    assert fixed["iterations"] > adaptive["iterations"]


def test_family_members_are_keyed_by_index() -> None:
    _, out = _solve(str(REPO / "examples" / "consensus_lasso.cat"), "--max-iter", "3")
    assert any(k.endswith("[0]") for k in out["objects"])


def test_infeasible_plan_is_never_optimal() -> None:
    spec = REPO / "tests" / "cases" / "solve" / "infeasible_capacity.cat"
    code_c, cent = _solve(str(spec), "--centralized")
    assert cent["status"] == "infeasible" and code_c == 1
    code_d, dist = _solve(str(spec))
    assert dist["status"] in ("infeasible", "max_iterations")
    assert code_d == 1


def test_human_output_and_unknown_delta(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["solve", str(REPO / "examples" / "gpu_fleet.cat"), "--quiet"])
    assert result.exit_code == 0
    assert "status:      optimal" in result.output and "tenant_a.x = [" in result.output
    bad = CliRunner().invoke(main, ["solve", str(REPO / "examples" / "gpu_fleet.cat"), "--delta", "nope"])
    assert bad.exit_code == 2 and "unknown PlanDelta" in bad.output


def test_plot_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "hist.png"
    result = CliRunner().invoke(main, ["solve", str(REPO / "examples" / "mixed_plan.cat"), "--quiet", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    bad = CliRunner().invoke(main, ["solve", str(REPO / "examples" / "mixed_plan.cat"), "--centralized", "--plot", str(out)])
    assert bad.exit_code == 2


def test_progress_rows_go_to_the_callback() -> None:
    from catopt_dsl.compile import load_plan
    from catopt_dsl.solver import solve
    from catopt_dsl.solver.progress import ProgressPrinter
    import io

    stream = io.StringIO()
    result = solve(load_plan(REPO / "examples" / "gpu_fleet.cat"), progress=ProgressPrinter(every=10, stream=stream))
    lines = stream.getvalue().splitlines()
    assert lines[0].split() == ["iter", "r_prim", "r_dual", "rho", "objective"]
    assert len(lines) == 2 + result.iterations // 10  # header, iteration 1, then every 10th
    assert int(lines[-1].split()[0]) == (result.iterations // 10) * 10
