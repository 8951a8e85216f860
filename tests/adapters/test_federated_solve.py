"""examples/federated: consensus ADMM across torch, torch, JAX and .cat tenants reproduces the
centralised training run (reference.py, exact Newton on the pooled data), in-process and over the
delta-sync protocol; the MLP variant runs and ends `stationary`, never `optimal`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from click.testing import CliRunner

from catopt_dsl.adapters.samples import softmax_loss_np
from catopt_dsl.cli import cli
from catopt_dsl.compile import analyze
from catopt_dsl.runtime.backends import solve_with
from catopt_dsl.solver import SolveOptions, solve
from catopt_dsl.solver.result import SolveResult

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "federated"
SITES = ("site_0", "site_1", "site_2", "site_3")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fed() -> Iterator[tuple[ModuleType, ModuleType]]:
    sys.path.insert(0, str(FOLDER))
    try:
        yield importlib.import_module("make_data"), importlib.import_module("reference")
    finally:
        sys.path.remove(str(FOLDER))


@pytest.fixture(scope="module")
def plan():  # type: ignore[no-untyped-def]
    a = analyze(FOLDER / "federated.cat")
    assert a.ok, [d.message for d in a.diagnostics]
    return a.plan


@pytest.fixture(scope="module")
def inprocess(plan) -> SolveResult:  # type: ignore[no-untyped-def]
    return solve(plan, SolveOptions(eps_abs=1e-7, eps_rel=1e-7))


def _theta(model: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(model["W"]).reshape(-1), np.asarray(model["b"]).reshape(-1)])


def _check_against_reference(result: SolveResult, fed: tuple[ModuleType, ModuleType]) -> None:
    make_data, reference = fed
    ref = reference.train()
    sites = make_data.generate()
    X, y = reference.pooled(sites)
    assert result.status == "optimal", result.message
    theta = _theta(result.shared["model"])
    loss = softmax_loss_np(theta, X, y, make_data.CLASSES)
    assert abs(loss - ref.loss) <= 1e-4 * abs(ref.loss), (loss, ref.loss)
    assert result.objective is not None
    assert abs(result.objective - ref.objective) <= 1e-4 * abs(ref.objective), (result.objective, ref.objective)
    # each site's own x (the worker's, not the glued copy) agrees with the consensus
    z = theta
    for name in SITES:
        x = np.asarray(result.state.x[name])
        assert np.abs(x - z).max() <= 1e-5, (name, float(np.abs(x - z).max()))
    # and the consensus is the centralised model
    assert np.abs(theta - ref.theta).max() <= 1e-4


def test_inprocess_admm_matches_the_centralised_training_run(inprocess: SolveResult, fed) -> None:  # type: ignore[no-untyped-def]
    _check_against_reference(inprocess, fed)
    # who did the x-updates: three adapters' prox steps, the .cat tenant by Newton
    assert inprocess.local_solvers is not None
    assert inprocess.local_solvers["methods"]["adapter"] == 3
    assert inprocess.local_solvers["methods"]["newton"] == 1


def test_the_distributed_backend_reaches_the_same_answer(plan, inprocess: SolveResult, fed) -> None:  # type: ignore[no-untyped-def]
    result = solve_with(plan, SolveOptions(eps_abs=1e-7, eps_rel=1e-7), backend="distributed")
    _check_against_reference(result, fed)
    assert result.objective is not None and inprocess.objective is not None
    assert abs(result.objective - inprocess.objective) <= 1e-9 * abs(inprocess.objective)


def test_catoptc_solve_runs_the_example(monkeypatch: pytest.MonkeyPatch, fed) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(FOLDER)
    result = CliRunner().invoke(cli, ["solve", "federated.cat", "--json"])
    assert result.exit_code == 0, result.output
    import json

    out = json.loads(result.stdout)
    assert out["status"] == "optimal"
    ref = fed[1].train()
    assert abs(out["objective"] - ref.objective) <= 1e-4 * ref.objective


def test_the_centralized_backend_refuses_external_losses(plan, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="framework adapters"):
        solve_with(plan, backend="centralized")
    monkeypatch.chdir(FOLDER)
    result = CliRunner().invoke(cli, ["solve", "federated.cat", "--centralized"])
    assert result.exit_code == 2 and "external losses" in result.output


def test_the_non_convex_mlp_runs_and_is_never_called_optimal() -> None:
    a = analyze(FOLDER / "federated_mlp.cat")
    assert a.ok, [d.message for d in a.diagnostics]
    assert sorted({d.code.value for d in a.diagnostics}) == ["E0903"]
    # loose tolerances keep the inner L-BFGS short (the prox stopping rule follows eps_abs)
    result = solve(a.plan, SolveOptions(max_iter=15, eps_abs=1e-3, eps_rel=1e-3))
    assert result.status in ("stationary", "max_iterations"), (result.status, result.message)
    if result.status == "stationary":
        assert "heuristic" in result.message and "not a proven optimum" in result.message
    # it trained: the consensus model fits the pooled data far better than the zero model
    sys.path.insert(0, str(FOLDER))
    try:
        make_data = importlib.import_module("make_data")
    finally:
        sys.path.remove(str(FOLDER))
    sites = make_data.generate()
    assert result.objective is not None
    zero_loss = sum(len(s["y"]) for s in sites) * np.log(make_data.CLASSES)
    assert result.objective < 0.9 * zero_loss
