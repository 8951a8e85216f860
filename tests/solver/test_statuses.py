"""Statuses as users meet them: docs/statuses.md's specs, CVXPY's warnings, the objective's sense."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest
from click.testing import CliRunner

import factories as F
from catopt_dsl.cli import main
from catopt_dsl.solver import SolveOptions, solve
from catopt_dsl.solver.cvx import solve_problem

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "statuses.md"


def _doc_specs() -> list[tuple[str, list[str], str]]:
    out = []
    for block in re.findall(r"```cat\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        first = block.splitlines()[0]
        assert first.startswith("// status: "), first
        status, *args = shlex.split(first[len("// status: ") :])
        out.append((status, args, block))
    return out


SPECS = _doc_specs()


def test_the_doc_shows_every_status() -> None:
    from catopt_dsl.solver import STATUSES

    assert {s for s, _, _ in SPECS} == set(STATUSES)


@pytest.mark.parametrize("status,args,text", SPECS, ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(SPECS)])
def test_each_documented_spec_ends_with_its_status(tmp_path: Path, status: str, args: list[str], text: str) -> None:
    spec = tmp_path / "plan.cat"
    spec.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(main, ["solve", str(spec), "--json", *args])
    out = json.loads(res.stdout)  # stderr carries the checker's warnings (`stationary`'s E0903)
    assert out["status"] == status, out["message"]
    assert res.exit_code == (0 if status == "optimal" else 1)
    if status in ("infeasible", "unbounded", "local_solver_failed"):
        assert out["objective"] is None and out["message"]
    if status == "max_iterations":
        assert "primal residual" in out["message"] and "hint:" in out["message"]


def test_text_output_states_the_objective_sense(tmp_path: Path) -> None:
    spec = tmp_path / "plan.cat"
    spec.write_text(SPECS[0][2], encoding="utf-8")
    res = CliRunner().invoke(main, ["solve", str(spec)])
    assert res.exit_code == 0
    assert re.search(r"objective: +\S+ \(minimisation form\)", res.output), res.output


def test_solve_problem_counts_cvxpy_inaccuracy_warnings_instead_of_leaking_them(monkeypatch: pytest.MonkeyPatch) -> None:
    x = cp.Variable()
    problem = cp.Problem(cp.Minimize(cp.square(x - 1)))

    def noisy_solve(*_args: object, **_kw: object) -> None:
        warnings.warn("Solution may be inaccurate. Try another solver.", UserWarning)
        x.value = np.array(1.0)

    monkeypatch.setattr(problem, "solve", noisy_solve)
    monkeypatch.setattr(type(problem), "status", property(lambda _self: "optimal_inaccurate"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # anything escaping would fail the test
        status, inaccurate = solve_problem(problem)
    assert (status, inaccurate) == ("optimal_inaccurate", 1)


def test_inaccurate_local_solves_become_one_named_warning_unless_the_run_is_verified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import catopt_dsl.solver.worker as worker

    real = worker.solve_problem

    def flagged(problem: cp.Problem, warm: bool = True) -> tuple[str, int]:
        status, _ = real(problem, warm)
        return status, 1

    monkeypatch.setattr(worker, "solve_problem", flagged)
    plan = F.consensus_regression(cvxpy_terms=True)
    stopped = solve(plan, SolveOptions(max_iter=3))
    assert stopped.status == "max_iterations"
    assert len(stopped.warnings) == len(plan.objects)
    assert all("inaccurate solution in 3 of 3 iterations" in w for w in stopped.warnings)
    assert "`tenant_0`" in stopped.warnings[0]
    finished = solve(plan)
    assert finished.status == "optimal" and finished.warnings == []


def test_a_negated_norm1_under_maximize_keeps_its_closed_form_prox() -> None:
    from catopt_dsl.compile import load_plan
    from catopt_dsl.solver.shared import SharedProx

    plan = load_plan(ROOT / "tests" / "plans" / "cases" / "consensus_norm1_maximize.cat")
    prox = SharedProx(plan.shared_block("model"))
    assert prox.closed_form and prox.closed == {"w": ("norm1", 0.5)}
