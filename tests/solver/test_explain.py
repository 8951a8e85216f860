"""``catoptc check --explain``: each object's class, method and why, family members on one line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from catopt_dsl.cli import cli
from catopt_dsl.compile import load_plan
from catopt_dsl.solver import SolveOptions, solve
from catopt_dsl.solver.explain import explain

ROOT = Path(__file__).resolve().parents[2]

SPEC = """catopt 1;
SharedVariables model { var w: float[2]; }
LocalProblem site[i in 0..3] { var w: float[2]; minimize sum_squares(w - 1.0); }
LocalProblem odd { var w: float[2]; minimize sum(maximum(w, 0.5)) + sum_squares(w); }
LocalProblem ramp { var w: float[2]; minimize sum_squares(w); subject to { abs(w[1:] - w[:-1]) <= 0.1; } }
Limit agree on model { site[*].w == model.w; odd.w == model.w; ramp.w == model.w; }
Colimit plan of model;
"""


def test_explain_groups_family_members_and_gives_the_reason(tmp_path: Path) -> None:
    spec = tmp_path / "p.cat"
    spec.write_text(SPEC, encoding="utf-8")
    lines = explain(load_plan(spec))
    assert lines[0].startswith("site[0..3]: closed_form_qp -> kkt (")
    assert lines[1].startswith("odd: general -> cvxpy (") and "`maximum`" in lines[1]
    assert lines[2].startswith("ramp: qp -> split (")
    # what the solve reports agrees with what explain promised
    summary = solve(load_plan(spec), SolveOptions()).local_solvers
    assert summary is not None and summary["methods"]["kkt"] == 4 and set(summary["cvxpy"]) == {"odd"}


def test_check_explain_on_the_command_line() -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["check", "--explain", str(ROOT / "examples" / "sites_200.cat")])
    assert res.exit_code == 0
    assert res.stdout.strip().endswith("site[0..199]: closed_form_qp -> kkt (quadratic objective, linear equalities only; one linear map per rho)")
    res = runner.invoke(cli, ["check", "--explain", "--format", "json", str(ROOT / "examples" / "sites_200.cat")])
    assert res.exit_code == 2 and "--explain prints text" in res.output
