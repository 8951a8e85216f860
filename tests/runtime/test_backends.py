"""One backend registry: the CLI, apply_delta/PlanSession and generated packages offer the same."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main, solve as solve_command
from catopt_dsl.compile import load_plan
from catopt_dsl.runtime.backends import BACKENDS, backend_names, solve_with
from catopt_dsl.bindings.plans import PlanBase

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "plans" / "cases" / "two_couplings_both_active.cat"


def test_the_cli_offers_exactly_the_registered_backends() -> None:
    option = next(p for p in solve_command.params if p.name == "backend")
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == backend_names() == tuple(BACKENDS)


@pytest.mark.parametrize("backend", ["inprocess", "distributed", "centralized"])
def test_every_local_backend_gives_one_answer(backend: str) -> None:
    plan = load_plan(SPEC)
    ref = solve_with(plan, backend="centralized")
    got = solve_with(plan, backend=backend)
    assert got.status == ref.status == "optimal"
    assert got.objective == pytest.approx(ref.objective, rel=1e-5)


def test_generated_plans_dispatch_through_the_registry() -> None:
    plan = PlanBase(load_plan(SPEC))
    assert plan.solve(backend="distributed").status == "optimal"
    with pytest.raises(ValueError, match="unknown backend"):
        plan.solve(backend="nowhere")


def test_an_address_is_only_for_a_cluster_backend(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only for ray"):
        solve_with(load_plan(SPEC), backend="inprocess", address="127.0.0.1:6379")
    res = CliRunner().invoke(main, ["solve", str(SPEC), "--address", "127.0.0.1:6379"])
    assert res.exit_code == 2 and "needs --backend ray" in res.output
    res = CliRunner().invoke(main, ["solve", str(SPEC), "--centralized", "--backend", "ray"])
    assert res.exit_code == 2
