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
