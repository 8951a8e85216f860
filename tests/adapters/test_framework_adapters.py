"""The torch and JAX adapters as a solver sees them: the FrameworkProblem seam on known problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catopt_dsl.adapters.api import (
    AdapterError,
    AdapterUnavailable,
    ParamLayout,
    ProxOptions,
)
from catopt_dsl.adapters.jax_adapter import JaxAdapter
from catopt_dsl.adapters.samples import reference_prox, sample
from catopt_dsl.adapters.torch_adapter import TorchAdapter

ADAPTERS = {"torch": TorchAdapter(), "jax": JaxAdapter()}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Any:
    return ADAPTERS[request.param]


def test_prox_matches_the_reference_and_warm_starts(adapter: Any) -> None:
    s = sample("softmax")
    problem = adapter.problem(adapter.contract.sample("softmax"), s.data, s.layout)
    assert problem.n == 15 and problem.convex and "declared convex by adapter" in problem.convexity
    rng = np.random.default_rng(7)
    v = rng.standard_normal(problem.n)
    first = problem.prox(v, 0.5)
    ref = reference_prox(s.loss, s.grad, s.hess, v, 0.5)
    assert first.converged and first.message == ""
    assert np.abs(first.theta - ref).max() < 1e-8
    assert first.loss == pytest.approx(s.loss(first.theta), rel=1e-12)
    # Without `warm`, the next step starts from the previous answer: a nearby centre is cheap.
    second = problem.prox(v + 1e-3, 0.5)
    assert second.converged and second.iterations < first.iterations
    # The Hessian-vector product is the adapter's own (autograd / JAX), exact to rounding.
    u = rng.standard_normal(problem.n)
    assert np.allclose(problem.hvp(ref, u), s.hess(ref) @ u, atol=1e-10)


def test_stopping_rule_is_reported_honestly(adapter: Any) -> None:
    s = sample("logistic")
    problem = adapter.problem(adapter.contract.sample("logistic"), s.data, s.layout,
                              options=ProxOptions(tol=1e-12, max_iter=1))
    result = problem.prox(np.full(problem.n, 3.0), 1e-3, warm=np.full(problem.n, -3.0))
    assert not result.converged
    assert "stopped after" in result.message and f"{result.grad_norm:.2e}" in result.message


def test_a_loss_that_does_not_fit_the_declared_vars_is_a_clear_error(adapter: Any) -> None:
    s = sample("softmax")
    wrong = ParamLayout.of(("W", (3, 4)), ("b", (4,)))
    with pytest.raises(AdapterError, match=r"expects 15 parameters \(W: float\[4, 3\], b: float\[3\]\) but the spec declares 16"):
        adapter.problem(adapter.contract.sample("softmax"), s.data, wrong)

    def undeclared(params: Any, data: Any) -> Any:  # no external_loss(params=...): the trial run catches it
        return (data["X"] @ params["W"]).sum()

    with pytest.raises(AdapterError, match=r"failed on the declared parameters \(W: float\[3, 4\], b: float\[4\]\)"):
        adapter.problem(undeclared, s.data, wrong)

    def not_scalar(params: Any, data: Any) -> Any:
        return data["X"] @ params["W"]

    with pytest.raises(AdapterError, match="must return a scalar"):
        adapter.problem(not_scalar, s.data, s.layout)
    with pytest.raises(AdapterError, match="cannot import module"):
        adapter.problem("no_such_tenant_module:loss", s.data, s.layout)


def test_undeclared_losses_are_not_called_convex(adapter: Any, tmp_path: Path) -> None:
    s = sample("least_squares")
    body = "def loss(params, data):\n    r = data['A'] @ params['w'] - data['b']\n    return 0.5 * (r * r).sum()\n"
    (tmp_path / "site_losses.py").write_text(body, encoding="utf-8")
    problem = adapter.problem("site_losses:loss", s.data, s.layout, search_path=[tmp_path])
    assert not problem.convex
    assert "ADMM is then a heuristic" in problem.convexity and "site_losses:loss" in problem.convexity
    # It still solves: convexity is a promise about guarantees, not a precondition of the step.
    v = np.ones(problem.n)
    assert problem.prox(v, 1.0).converged


def test_non_convex_model_runs_with_the_heuristic_warning(adapter: Any) -> None:
    import importlib.util
    import sys

    folder = Path(__file__).resolve().parents[2] / "examples" / "federated"
    sys.path.insert(0, str(folder))
    try:
        make_data = importlib.import_module("make_data")
        site = make_data.generate()[0]
        layout = ParamLayout.of(("W1", (5, 8)), ("b1", (8,)), ("W2", (8, 3)), ("b2", (3,)))
        module = "losses_torch" if adapter.contract.name == "torch" else "losses_jax"
        assert importlib.util.find_spec(module) is not None
        problem = adapter.problem(f"{module}:mlp_loss", site, layout, search_path=[folder])
    finally:
        sys.path.remove(str(folder))
    assert not problem.convex and "heuristic" in problem.convexity
    v = 0.1 * np.random.default_rng(0).standard_normal(problem.n)
    result = problem.prox(v, 1.0)
    assert result.converged and result.loss < problem.loss(v)


def test_flatten_and_unflatten_are_native_and_inverse(adapter: Any) -> None:
    s = sample("softmax")
    problem = adapter.problem(adapter.contract.sample("softmax"), s.data, s.layout)
    theta = np.arange(15.0)
    native = problem.unflatten(theta)
    assert type(native["W"]).__module__.split(".")[0] in ("torch", "jaxlib", "jax")
    assert np.asarray(native["W"]).tolist() == theta[:12].reshape(4, 3).tolist()
    assert np.array_equal(problem.flatten(native), theta)


def test_rho_must_be_positive(adapter: Any) -> None:
    s = sample("least_squares")
    problem = adapter.problem(adapter.contract.sample("least_squares"), s.data, s.layout)
    with pytest.raises(AdapterError, match="rho must be positive"):
        problem.prox(np.zeros(problem.n), 0.0)


def test_a_gpu_device_without_a_gpu_says_so(adapter: Any) -> None:
    s = sample("least_squares")
    with pytest.raises(AdapterUnavailable, match="cuda"):
        adapter.problem(adapter.contract.sample("least_squares"), s.data, s.layout, device="cuda:0")
