"""examples/federated: the generated data, the tenants' torch and JAX losses, and the centralised
reference, each checked against an independent implementation (numpy, CVXPY)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cvxpy as cp
import numpy as np
import pytest

from catopt_dsl.adapters.api import ParamLayout
from catopt_dsl.adapters.jax_adapter import JaxAdapter
from catopt_dsl.adapters.samples import softmax_loss_np
from catopt_dsl.adapters.torch_adapter import TorchAdapter

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "federated"
LAYOUT = ParamLayout.of(("W", (5, 3)), ("b", (3,)))


@pytest.fixture(scope="module")
def fed() -> Iterator[tuple[ModuleType, ModuleType]]:
    sys.path.insert(0, str(FOLDER))
    try:
        yield importlib.import_module("make_data"), importlib.import_module("reference")
    finally:
        sys.path.remove(str(FOLDER))


def _cvx_softmax(theta: cp.Variable, X: np.ndarray, y: np.ndarray) -> cp.Expression:
    W = cp.reshape(theta[:15], (5, 3), order="C")
    Z = X @ W + np.ones((X.shape[0], 1)) @ cp.reshape(theta[15:], (1, 3), order="C")
    return cp.sum(cp.log_sum_exp(Z, axis=1)) - cp.sum(cp.multiply(np.eye(3)[y], Z))


def _cvx_solve(objective: cp.Expression) -> None:
    problem = cp.Problem(cp.Minimize(objective))
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, max_iter=500)
    assert problem.status == "optimal"


def test_data_is_deterministic_and_committed(fed: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    make_data, _ = fed
    written = make_data.write(tmp_path)
    assert len(written) == 13  # 4 sites x (npz, X.npy, Y.npy) + the MLP variant's init
    for path in written:
        assert path.read_bytes() == (FOLDER / "data" / path.name).read_bytes(), path.name
    sites = make_data.generate()
    assert [len(s["y"]) for s in sites] == list(make_data.SIZES)
    assert all(set(np.unique(s["y"])) == {0, 1, 2} for s in sites)


def test_tenant_losses_agree_with_numpy(fed: tuple[ModuleType, ModuleType]) -> None:
    make_data, _ = fed
    rng = np.random.default_rng(0)
    for i, site in enumerate(make_data.generate()):
        for adapter, module in ((TorchAdapter(), "losses_torch"), (JaxAdapter(), "losses_jax")):
            problem = adapter.problem(f"{module}:softmax_loss", site, LAYOUT, search_path=[FOLDER])
            assert problem.convex
            theta = rng.standard_normal(18)
            ref = softmax_loss_np(theta, site["X"], site["y"], 3)
            assert problem.loss(theta) == pytest.approx(ref, rel=1e-12), (i, module)


@pytest.mark.slow
def test_prox_steps_agree_with_cvxpy(fed: tuple[ModuleType, ModuleType]) -> None:
    make_data, _ = fed
    sites = make_data.generate()
    rng = np.random.default_rng(1)
    for i, (adapter, module) in enumerate(((TorchAdapter(), "losses_torch"), (JaxAdapter(), "losses_jax"))):
        site = sites[i]
        problem = adapter.problem(f"{module}:softmax_loss", site, LAYOUT, search_path=[FOLDER])
        for rho in (0.1, 2.0):
            v = rng.standard_normal(18)
            theta = cp.Variable(18)
            _cvx_solve(_cvx_softmax(theta, site["X"], site["y"]) + rho / 2 * cp.sum_squares(theta - v))
            step = problem.prox(v, rho)
            assert step.converged
            assert np.abs(step.theta - theta.value).max() < 1e-6, (module, rho)


def test_centralised_reference_agrees_with_cvxpy(fed: tuple[ModuleType, ModuleType]) -> None:
    make_data, reference = fed
    sites = make_data.generate()
    ref = reference.train(sites)
    X, y = reference.pooled(sites)
    theta = cp.Variable(18)
    _cvx_solve(_cvx_softmax(theta, X, y) + make_data.LAMBDA / 2 * cp.sum_squares(theta))
    assert np.abs(ref.theta - theta.value).max() < 1e-6
    assert ref.objective == pytest.approx(softmax_loss_np(theta.value, X, y, 3) + make_data.LAMBDA / 2 * float(theta.value @ theta.value), rel=1e-9)
    # And it is a minimum: the gradient of the regularised pooled loss vanishes.
    from catopt_dsl.adapters.samples import softmax_grad_np

    g = softmax_grad_np(ref.theta, X, y, 3) + make_data.LAMBDA * ref.theta
    assert np.abs(g).max() < 1e-9
