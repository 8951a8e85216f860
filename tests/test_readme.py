"""The README's two set-up commands work as written, from a fresh clone in a fresh virtual env.

The commands are read from the README's first ``sh`` block, so the README cannot drift from what
is tested. The clone is of the committed tree (what CI and a new user get). The second command is
``./test.sh``, run with ``CATOPT_TEST_SCOPE=fast`` (the fast loop, every other step in full) so
that the suite does not run itself in full twice; READY_TO_PUBLISH must appear and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, flags=re.S)
    assert block is not None, "the README starts with a ```sh block of set-up commands"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]
    return commands


def test_the_readme_opens_with_two_commands() -> None:
    first, second = readme_commands()
    assert "pip install" in first and "catoptc solve examples/" in first
    assert second == "./test.sh"


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("CATOPT_README_TEST") == "1", reason="already inside the README test")
@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_readme_commands_work_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHON", "PYTHONPATH", "CATOPT_TEST_SCOPE")}
    env["CATOPT_README_TEST"] = "1"
    first, second = readme_commands()
    done = subprocess.run(["bash", "-c", first], cwd=clone, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "status:      optimal" in done.stdout
    env["CATOPT_TEST_SCOPE"] = "fast"
    done = subprocess.run(["bash", "-c", second], cwd=clone, env=env, capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    marker = clone / "READY_TO_PUBLISH"
    assert marker.exists()
    assert "scope fast" in marker.read_text()


def tutorial_block() -> str:
    """The shell block under the README's five-minute tutorial heading, as written."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Five-minute tutorial[^\n]*\n(.*?)^## ", text, flags=re.DOTALL | re.MULTILINE)
    assert section is not None, "the README has a five-minute tutorial section"
    block = re.search(r"```sh\n(.*?)```", section.group(1), flags=re.DOTALL)
    assert block is not None, "the tutorial is one ```sh block"
    return block.group(1)


def test_the_tutorial_only_uses_commands_that_exist() -> None:
    from catopt_dsl.cli import cli

    used = re.findall(r"^catoptc (\S+)", tutorial_block(), flags=re.MULTILINE)
    assert used[:3] == ["init", "check", "solve"]
    assert set(used) <= set(cli.commands), sorted(set(used) - set(cli.commands))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    """From an empty folder, with `catoptc` on the PATH being this checkout's code."""
    import json
    import sys

    pytest.importorskip("matplotlib")  # the demo's report
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "catoptc"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m catopt_dsl "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CATOPT_TEST_SCOPE")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", tutorial_block()], check=False, cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    plan = work / "my-plan"
    assert "status:      optimal" in done.stdout
    after = json.loads((plan / "after.json").read_text(encoding="utf-8"))
    assert after["status"] == "optimal"
    assert after["iterations"] <= 5  # warm-started from the first solution
    for target in ("python", "rust", "cpp"):
        assert any((plan / "build" / target).iterdir())
    assert "6/6 centralised checks held" in done.stdout
    assert (plan / "fleet-report" / "report.html").stat().st_size > 10_000


def test_the_readme_json_example_is_what_solve_prints() -> None:
    """The README's `solve --json` example (gpu_fleet, values rounded) against a real solve."""
    import json

    from click.testing import CliRunner

    from catopt_dsl.cli import main

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(\{\"dual_residual\".*?)```", text, flags=re.S)
    assert block is not None
    shown = block.group(1)
    run = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "gpu_fleet.cat"), "--json", "--quiet"])
    doc = json.loads(run.stdout)
    assert all(f'"{key}":' in shown for key in doc), sorted(k for k in doc if f'"{k}":' not in shown)
    objective = float(re.search(r'"objective": (-?[\d.]+)', shown).group(1))  # type: ignore[union-attr]
    iterations = int(re.search(r'"iterations": (\d+)', shown).group(1))  # type: ignore[union-attr]
    assert round(doc["objective"], 4) == objective and doc["iterations"] == iterations
    assert [round(v, 4) for v in doc["objects"]["tenant_a"]["x"]] == [7.95, 5.5833, 2.0]
