"""The details of `catoptc solve`'s output that users read: counts, labels, scalars, plot paths,
colour and errors under --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from catopt_dsl.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

SCALAR = """catopt 1;
schema Use v1 { amount: float; }
SharedVariables pool { param cap: float = 3; }
LocalProblem a { var x: float; minimize square(x - 2); }
LocalProblem b { var x: float; minimize square(x - 2); }
Morphism ua : a -> pool carries Use v1 { amount = x; }
Morphism ub : b -> pool carries Use v1 { amount = x; }
Limit lim on pool { sum(ua.amount, ub.amount) <= cap; }
"""


def _solve(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["solve", *args])
    return result.exit_code, result.stdout, result.stderr


def test_text_output_lists_ten_objects_unless_asked_for_all() -> None:
    code, out, _ = _solve(str(EXAMPLES / "sites_200.cat"), "--quiet")
    assert code == 0
    assert sum(1 for line in out.splitlines() if line.startswith("  site[")) == 10
    assert "... and 190 more objects (--all lists every one" in out
    code, out, _ = _solve(str(EXAMPLES / "sites_200.cat"), "--quiet", "--all")
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("  site[")]
    assert len(lines) == 200 and "more objects" not in out
    assert not lines[0].endswith("...")  # every entry in full, too


def test_scalars_print_as_numbers(tmp_path: Path) -> None:
    spec = tmp_path / "scalar.cat"
    spec.write_text(SCALAR)
    code, out, _ = _solve(str(spec), "--quiet")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("  a.x = "))
    assert abs(float(line.split("=")[1]) - 1.5) < 1e-4  # a number, not "[1.5]"


def test_delta_output_labels_both_solves() -> None:
    code, out, _ = _solve(str(EXAMPLES / "plan_deltas.cat"), "--quiet", "--delta", "tenant_d_joins")
    assert code == 0
    before, after = out.split("== after PlanDelta `tenant_d_joins`")
    assert before.startswith("== the plan as declared ==")
    assert "tenant_d.x" not in before and "tenant_d.x" in after  # the joining tenant only after


def test_plot_to_a_bad_path_or_format_is_refused_before_solving(tmp_path: Path) -> None:
    spec = str(EXAMPLES / "mixed_plan.cat")
    for target, why in ((tmp_path / "missing" / "h.png", "does not exist"), (tmp_path / "h.gif", "`.gif`")):
        code, out, err = _solve(spec, "--quiet", "--plot", str(target))
        assert code == 2 and why in err and "status:" not in out
    code, _, _ = _solve(spec, "--quiet", "--plot", str(tmp_path / "h.svg"))
    assert code == 0 and (tmp_path / "h.svg").read_text().lstrip().startswith("<?xml")


def test_json_errors_are_a_json_object_on_stdout(tmp_path: Path) -> None:
    spec = tmp_path / "bad.cat"
    spec.write_text("catopt 1;\nLocalProblem a { var x: float; minimize square(y); }\n")
    code, out, err = _solve(str(spec), "--json")
    assert code == 1 and "error[E0101]" in err
    doc = json.loads(out)
    assert doc["status"] == "error"
    assert [(d["code"], d["line"], d["col"]) for d in doc["diagnostics"]] == [("E0101", 2, 48)]


def test_color_always_colours_a_pipe(tmp_path: Path) -> None:
    spec = tmp_path / "bad.cat"
    spec.write_text("catopt 1;\nLocalProblem a { var x: float; minimize square(y); }\n")
    run = [sys.executable, "-m", "catopt_dsl", "check", str(spec)]
    piped = subprocess.run([*run, "--color", "always"], capture_output=True, text=True, cwd=tmp_path)
    assert piped.returncode == 1 and "\x1b[" in piped.stderr
    plain = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path)  # auto: a pipe is plain
    assert plain.returncode == 1 and "\x1b[" not in plain.stderr and "error[E0101]" in plain.stderr
