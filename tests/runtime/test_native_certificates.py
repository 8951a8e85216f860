"""Plan-level infeasibility in the native runtimes (C++ and Rust): a plan whose local sets each have points
but whose links cannot all hold ends ``infeasible`` with a verified Farkas certificate, as the
reference does (``catopt_dsl/solver/certificate.py``), where every object involved is a generated
QP whose rows each bound one coordinate; elsewhere it never claims more than ``max_iterations``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.runtime.native_backend import build_native, run_native
from catopt_dsl.solver import SolveOptions, solve

ROOT = Path(__file__).resolve().parents[2]

# (one C++ build per plan: slow, see tests/conftest.py)
pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler")

#: infeasible through couplings or consensus links, every object a box (or unconstrained) QP
CERTIFIED = [
    "tests/cases/naming/infeasible_coupling.cat",
    "tests/plans/cases/consensus_infeasible.cat",
    "tests/plans/cases/coupling_infeasible_eq.cat",
    "tests/plans/cases/coupling_infeasible_ge.cat",
    "tests/plans/cases/coupling_infeasible_le.cat",
    "tests/plans/cases/two_couplings_jointly_infeasible.cat",
]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CATOPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("spec", CERTIFIED)
def test_native_certifies_what_the_reference_certifies(spec: str, cache: Path) -> None:
    plan = load_plan(ROOT / spec)
    ref = solve(plan)
    got = run_native(build_native(plan), SolveOptions())
    assert ref.status == got["status"] == "infeasible", got["message"]
    assert got["objective"] is None and got["objects"] is None
    message = got["message"]
    assert "the plan is infeasible through" in message and "certificate verified at iteration" in message
    # within a few checks of the reference (the check runs every 25 iterations)
    assert got["iterations"] <= ref.iterations + 50


def test_native_leaves_what_it_cannot_support_unclaimed(cache: Path) -> None:
    """Object `a` has a general row (x >= w): its support needs an LP the native runtime does not
    have, so the status stays ``max_iterations`` (the reference proves ``infeasible``)."""
    plan = load_plan(ROOT / "tests/plans/cases/consensus_and_coupling_infeasible.cat")
    assert solve(plan).status == "infeasible"
    got = run_native(build_native(plan), SolveOptions(max_iter=400))
    assert got["status"] == "max_iterations" and got["iterations"] == 400


@pytest.mark.parametrize("spec", ["tests/plans/cases/eq_coupling.cat", "tests/plans/cases/three_senses_one_limit.cat"])
def test_feasible_plans_stay_optimal(spec: str, cache: Path) -> None:
    """A feasible plan's duals settle too (to the optimal multipliers): their increments vanish,
    so no candidate is ever formed and the solve ends ``optimal`` at the reference's objective."""
    plan = load_plan(ROOT / spec)
    ref = solve(plan)
    got = run_native(build_native(plan), SolveOptions())
    assert ref.status == got["status"] == "optimal"
    assert got["objective"] == pytest.approx(ref.objective, rel=1e-5, abs=1e-7)


#: the Rust runtime's copy of the check, on a coupling plan, a consensus plan and two couplings
RUST_CERTIFIED = [
    "tests/cases/naming/infeasible_coupling.cat",
    "tests/plans/cases/consensus_infeasible.cat",
    "tests/plans/cases/two_couplings_jointly_infeasible.cat",
]


@pytest.mark.skipif(shutil.which("cargo") is None, reason="no Rust toolchain")
@pytest.mark.parametrize("spec", RUST_CERTIFIED)
def test_rust_and_cpp_give_one_verdict(spec: str, cache: Path) -> None:
    """The Rust cdylib proves the same certificate at the same iteration, word for word."""
    plan = load_plan(ROOT / spec)
    rust = run_native(build_native(plan, "rust"), SolveOptions())
    cpp = run_native(build_native(plan, "cpp"), SolveOptions())
    assert rust["status"] == cpp["status"] == "infeasible"
    assert rust["iterations"] == cpp["iterations"] and rust["message"] == cpp["message"]
