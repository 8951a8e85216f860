"""``--backend native``: the plan's generated C++ solver compiled with the machine's compiler
(cached by content hash) and called through its C API with ctypes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import load_plan
from catopt_dsl.runtime.backends import solve_with
from catopt_dsl.runtime.native_backend import NativeUnsupported, build_native

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler")


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CATOPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_native_backend_matches_centralized_and_caches(cache: Path) -> None:
    plan = load_plan(ROOT / "tests/cases/native/qp_active.cat")
    first = build_native(plan)
    assert not first.cached and first.compile_s > 0 and first.path.is_relative_to(cache)
    again = build_native(load_plan(ROOT / "tests/cases/native/qp_active.cat"))
    assert again.cached and again.path == first.path  # same content, no second compile
    got = solve_with(plan, backend="native")
    ref = solve_with(plan, backend="centralized")
    assert got.status == ref.status == "optimal"
    assert got.objective is not None and ref.objective is not None
    assert math.isclose(got.objective, ref.objective, rel_tol=1e-5)
    assert got.objects["a"]["x"].shape == (3,) and got.shared["model"]["w"].shape == (2,)
    # the CLI prints the same JSON contract
    res = CliRunner().invoke(main, ["solve", str(ROOT / "tests/cases/native/qp_active.cat"), "--backend", "native", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["status"] == "optimal" and math.isclose(data["objective"], ref.objective, rel_tol=1e-5)


@pytest.mark.slow
def test_native_backend_infeasible_local_qp(cache: Path) -> None:
    res = CliRunner().invoke(main, ["solve", str(ROOT / "tests/cases/native/qp_infeasible.cat"), "--backend", "native", "--json"])
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert data["status"] == "infeasible" and "`a`" in data["message"]


def test_native_backend_names_the_objects_that_are_not_qps(cache: Path) -> None:
    plan = load_plan(ROOT / "examples/federated_logreg.cat")
    with pytest.raises(NativeUnsupported, match=r"`site\[7\]`"):
        build_native(plan)
    res = CliRunner().invoke(main, ["solve", str(ROOT / "examples/federated_logreg.cat"), "--backend", "native"])
    assert res.exit_code == 2 and "not QPs" in res.output and "Traceback" not in res.output
    assert not cache.exists()  # nothing was compiled
