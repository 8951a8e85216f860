"""Generated Python bindings a cvxpy/cvxpygen user recognises: settable params, warm re-solves,
typed options, every backend, and dual prices that match the centralised solve."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catopt_dsl.backends.emit import emit_target
from catopt_dsl.compile import load_plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    out = tmp_path_factory.mktemp("bindings")
    emit_target("python", load_plan(ROOT / "examples" / "gpu_fleet.cat"), out)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("gpu_fleet")
    finally:
        sys.path.remove(str(out))
        sys.modules.pop("gpu_fleet", None)
        for name in [m for m in sys.modules if m.startswith("gpu_fleet.")]:
            sys.modules.pop(name)


def _changed(pkg: Any) -> Any:
    plan = pkg.Plan()
    plan.tenant_a.value = plan.tenant_a.value * 1.05  # a typed, checked setter per param
    plan.set_param("fleet", "capacity", np.array([19.0, 12.0, 8.0]))  # a shared block's param
    return plan


def test_a_changed_param_re_solves_warm_in_fewer_iterations_than_cold(gpu_fleet: Any) -> None:
    warm = gpu_fleet.Plan()
    first = warm.solve()
    assert first.status == "optimal"
    warm.tenant_a.value = warm.tenant_a.value * 1.05
    warm.set_param("fleet", "capacity", np.array([19.0, 12.0, 8.0]))
    again = warm.solve()
    cold = _changed(gpu_fleet).solve(warm=False)
    ref = _changed(gpu_fleet).centralized()
    assert again.status == cold.status == ref.status == "optimal"
    assert again.iterations < cold.iterations, (again.iterations, cold.iterations)
    for got in (again, cold):
        assert got.objective == pytest.approx(ref.objective, rel=1e-5)
    # the coupling's bound followed the shared param
    assert np.allclose(warm.ir.couplings[0].rhs, [19.0, 12.0, 8.0])


def test_prices_match_the_centralised_duals(gpu_fleet: Any) -> None:
    plan = _changed(gpu_fleet)
    got, ref = plan.solve(), plan.centralized()
    (name,) = got.prices["couplings"]
    assert name == "capacity_limit#0"
    lam, ref_lam = got.prices["couplings"][name], ref.prices["couplings"][name]
    assert np.all(ref_lam >= 0)  # `<=` coupling: nonnegative prices
    np.testing.assert_allclose(lam, ref_lam, rtol=1e-4, atol=1e-4)
    # the sign convention: one more unit of capacity lowers the optimum by about the price
    bumped = _changed(gpu_fleet)
    bumped.set_param("fleet", "capacity", np.array([19.0, 12.0, 8.0]) + np.array([1e-3, 0.0, 0.0]))
    slope = (bumped.centralized().objective - ref.objective) / 1e-3
    assert slope == pytest.approx(-ref_lam[0], rel=1e-2)


def test_bad_values_are_refused_with_the_param_named(gpu_fleet: Any) -> None:
    plan = gpu_fleet.Plan()
    with pytest.raises(ValueError, match="tenant_a.value"):
        plan.tenant_a.value = [1.0, 2.0]
    with pytest.raises(ValueError, match="finite"):
        plan.tenant_a.penalty = float("nan")
    with pytest.raises(KeyError, match="no param `nope`"):
        plan.set_param("tenant_a", "nope", 1.0)
    with pytest.raises(TypeError):
        plan.solve(max_iters=10)  # typed options: a misspelt option is an error, not ignored


def test_every_cli_backend_is_offered(gpu_fleet: Any) -> None:
    plan = gpu_fleet.Plan()
    for backend in ("inprocess", "distributed", "centralized"):
        assert plan.solve(backend).status == "optimal"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler")
def test_native_backend_returns_the_in_process_result(
    gpu_fleet: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Plan().solve(backend="native")`: the generated C++ solver, built once per content and cached,
    returns the same PlanResult as the in-process solve, and follows a changed param."""
    monkeypatch.setenv("CATOPT_CACHE", str(tmp_path / "cache"))
    plan = gpu_fleet.Plan()
    native, inproc = plan.solve(backend="native"), plan.solve()
    assert type(native) is type(inproc)
    assert native.status == inproc.status == "optimal"
    assert native.objective == pytest.approx(inproc.objective, rel=1e-5)
    assert native.objects.keys() == inproc.objects.keys() and native.shared.keys() == inproc.shared.keys()
    for name, vars_ in inproc.objects.items():
        for var, value in vars_.items():
            assert native.objects[name][var].shape == value.shape
            np.testing.assert_allclose(native.objects[name][var], value, rtol=1e-3, atol=1e-3)
    builds = list((tmp_path / "cache").glob("*/libplan.so"))
    assert len(builds) == 1 and plan.solve(backend="native").objective == native.objective  # cached
    changed = _changed(gpu_fleet)
    got, ref = changed.solve(backend="native"), changed.centralized()
    assert got.status == ref.status == "optimal"
    assert got.objective == pytest.approx(ref.objective, rel=1e-5)
    assert got.objective != pytest.approx(native.objective, rel=1e-3)  # the change reached the native build
    assert len(list((tmp_path / "cache").glob("*/libplan.so"))) == 2
    with pytest.raises(ValueError, match="only applies to the native backend"):
        plan.solve(native_lang="rust")
