"""`catoptc init`: a starter plan that checks, solves to `optimal` and compiles, over nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.authoring.starter import starter_files
from catopt_dsl.cli import main
from catopt_dsl.syntax.format import format_source


def _init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(main, ["init", *args])


def test_init_writes_a_plan_that_checks_solves_and_compiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _init(tmp_path, monkeypatch, "proj")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "proj" / "plan.cat").is_file() and (tmp_path / "proj" / "data" / "targets.csv").is_file()
    runner = CliRunner()
    check = runner.invoke(main, ["check", "proj/plan.cat"])
    assert check.exit_code == 0 and "proj/plan.cat: ok" in check.stderr, check.output
    solve = runner.invoke(main, ["solve", "proj/plan.cat", "--json", "--quiet"])
    assert solve.exit_code == 0, solve.output
    assert '"status": "optimal"' in solve.stdout
    out = runner.invoke(main, ["compile", "proj/plan.cat", "--target", "all", "--out", "build"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "build" / "python").is_dir() and (tmp_path / "build" / "rust").is_dir() and (tmp_path / "build" / "cpp").is_dir()


def test_the_starter_agrees_with_the_centralised_solve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from catopt_dsl.compile import load_plan
    from catopt_dsl.runtime.backends import solve_with
    from catopt_dsl.solver import SolveOptions

    assert _init(tmp_path, monkeypatch).exit_code == 0
    plan = load_plan(tmp_path / "plan.cat")
    admm = solve_with(plan, SolveOptions(), backend="inprocess")
    central = solve_with(plan, SolveOptions(), backend="centralized")
    assert admm.status == central.status == "optimal"
    assert abs(admm.objective - central.objective) < 1e-3
    np.testing.assert_allclose(np.asarray(admm.shared["model"]["w"]), np.asarray(central.shared["model"]["w"]), atol=1e-3)


def test_init_overwrites_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plan.cat").write_text("my own plan")
    r = _init(tmp_path, monkeypatch)
    assert r.exit_code == 1
    assert "plan.cat already exists" in r.stderr and "nothing was written" in r.stderr
    assert (tmp_path / "plan.cat").read_text() == "my own plan"
    assert not (tmp_path / "data").exists()


def test_init_twice_refuses_the_second_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _init(tmp_path, monkeypatch).exit_code == 0
    (tmp_path / "data" / "targets.csv").write_text("9,9,9\n9,9,9\n9,9,9\n")
    assert _init(tmp_path, monkeypatch).exit_code == 1
    assert (tmp_path / "data" / "targets.csv").read_text() == "9,9,9\n9,9,9\n9,9,9\n"


def test_init_into_a_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "taken").write_text("x")
    assert _init(tmp_path, monkeypatch, "taken").exit_code == 2


def test_the_starter_is_written_as_fmt_writes_it() -> None:
    plan = starter_files()["plan.cat"].decode("utf-8")
    assert format_source(plan, "plan.cat").text == plan
