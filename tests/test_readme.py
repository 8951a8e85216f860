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
