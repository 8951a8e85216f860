"""The conformance kit: the four starter adapters conform, deliberately broken ones are caught."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from catopt_dsl.adapters import registry
from catopt_dsl.adapters.api import ProxOptions
from catopt_dsl.adapters.framework import resolve_loss
from catopt_dsl.adapters.kit import ConformanceError, assert_conforms, verify
from catopt_dsl.adapters.torch_adapter import TorchAdapter, TorchProblem
from catopt_dsl.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("name", ["torch", "jax"])
def test_framework_starters_conform(name: str) -> None:
    report = assert_conforms(registry.get(name))
    assert all(c.outcome == "pass" for c in report.checks)
    assert sum(c.name.endswith(": prox") for c in report.checks) == 3


@pytest.mark.parametrize("name", ["cpu", "cuda"])
def test_hardware_starters_conform(name: str) -> None:
    report = assert_conforms(registry.get(name), quick=True)
    recorded = [c for c in report.checks if c.name.startswith("recorded ") and c.name != "recorded descriptors"]
    assert len(recorded) == 3 and all(c.outcome == "pass" for c in recorded)
    live = next(c for c in report.checks if c.name == "live devices")
    if registry.get(name).availability().ok:
        assert live.outcome == "pass" and "measured" in live.message
    else:  # a machine without a GPU cannot vouch for one: skipped, with the reason
        assert live.outcome == "skip" and "no CUDA device here" in live.message


def test_cli_verify_passes_for_every_starter() -> None:
    for name in ("torch", "jax", "cpu", "cuda"):
        result = CliRunner().invoke(main, ["adapters", "verify", name, "--quick"])
        assert result.exit_code == 0, result.output
        assert "conforms" in result.output.splitlines()[-1]


# -- deliberately broken adapters --------------------------------------------------------------


class _WrongGradient(TorchProblem):
    def grad(self, theta: np.ndarray) -> np.ndarray:
        g = super().grad(theta)
        g[-1] += 0.5  # one wrong component: a forgotten term
        return g


class _WrongFlattening(TorchProblem):
    """Column-major instead of the documented row-major order (the classic torch/Fortran mix-up)."""

    def unflatten(self, theta: np.ndarray) -> dict[str, Any]:
        import torch

        out, start = {}, 0
        for v in self.layout.vars:
            chunk = np.asarray(theta[start:start + v.size]).reshape(v.shape, order="F")
            out[v.name] = torch.tensor(chunk)
            start += v.size
        return out

    def flatten(self, params: Any) -> np.ndarray:
        return np.concatenate([np.asarray(params[v.name]).reshape(-1, order="F") for v in self.layout.vars])


def _broken(problem_class: type) -> TorchAdapter:
    class Broken(TorchAdapter):
        def problem(self, loss: Any, data: Any, layout: Any, **kw: Any) -> Any:
            resolved = resolve_loss(self.contract, loss, layout)
            return problem_class(resolved, data, layout, "cpu", ProxOptions(), "torch")

    return Broken()


def test_kit_rejects_a_wrong_gradient() -> None:
    report = verify(_broken(_WrongGradient), quick=True)
    assert not report.ok
    failed = {c.name: c.message for c in report.failures}
    assert {"least_squares: gradient", "logistic: gradient", "softmax: gradient"} <= set(failed)
    # The prox step's polish follows the same wrong gradient, so it cannot meet the reference either;
    # flattening, losses and the contract are untouched and still pass.
    assert {name.split(": ")[1] for name in failed} <= {"gradient", "prox", "warm start"}
    assert "at b[2] grad =" in failed["softmax: gradient"]
    assert "disagrees with finite differences of the adapter's own loss" in failed["softmax: gradient"]
    with pytest.raises(ConformanceError, match=r"softmax: gradient: gradient disagrees with finite differences"):
        assert_conforms(_broken(_WrongGradient), quick=True)


def test_kit_rejects_a_wrong_flattening() -> None:
    report = verify(_broken(_WrongFlattening), quick=True)
    failed = {c.name: c.message for c in report.failures}
    # One-dimensional vars flatten the same either way; the 4 x 3 matrix does not.
    assert set(failed) == {"softmax: flattening"}
    assert "unflatten does not follow the documented order (vars in declaration order, row-major)" in failed["softmax: flattening"]
    assert "W[0, 1] should hold flat entry 1 but holds entry 4 (W[1, 1])" in failed["softmax: flattening"]
    assert report.render().splitlines()[-1] == f"{len(report.checks)} checks: does NOT conform (1 failed)"


def test_kit_rejects_a_prox_step_that_lies_about_convergence() -> None:
    class Lazy(TorchProblem):
        def prox(self, v: np.ndarray, rho: float, warm: np.ndarray | None = None) -> Any:
            r = super().prox(v, rho, warm)
            return type(r)(r.theta + 1e-3, r.iterations, True, "", r.grad_norm, r.loss)

    failed = {c.name: c.message for c in verify(_broken(Lazy), quick=True).failures}
    assert "from the reference Newton solve (tolerance 1e-06), yet reported converged" in failed["softmax: prox"]
