"""`catoptc explain CODE` prints the code's section of docs/errors.md, also from an installed wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.authoring.explain import entries, normalise
from catopt_dsl.cli import main
from catopt_dsl.errors import TITLES, ErrorCode

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.value)
def test_every_code_is_explained_with_its_title_and_fix(code: ErrorCode) -> None:
    r = CliRunner().invoke(main, ["explain", code.value])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{code.value}: {TITLES[code]}\n")
    assert "**Fix:**" in r.stdout
    assert "## E" not in r.stdout  # one section, not the next one too


def test_the_explanation_is_the_docs_section() -> None:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    body = entries()["E0303"].body
    assert body in text and len(body) > 200


@pytest.mark.parametrize(("given", "want"), [("E0101", "E0101"), ("e101", "E0101"), ("0101", "E0101"), ("101", "E0101"), (" E0001 ", "E0001")])
def test_codes_are_read_leniently(given: str, want: str) -> None:
    assert normalise(given) == want


@pytest.mark.parametrize("code", ["E0999", "hello", "E12345"])
def test_an_unknown_code_is_a_usage_error(code: str) -> None:
    r = CliRunner().invoke(main, ["explain", code])
    assert r.exit_code == 2
    assert "E0101" in r.stderr or "not an error code" in r.stderr


@pytest.mark.slow
def test_explain_and_init_work_from_an_installed_wheel(tmp_path: Path) -> None:
    """Build the wheel, install it into a bare folder, run it from elsewhere: the docs text and the
    starter plan come from inside the package, not from this checkout."""
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    if build.returncode != 0 and "hatchling" in (build.stdout + build.stderr):
        pytest.skip("hatchling is not installed: the wheel cannot be built here")
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("*.whl")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    work = tmp_path / "work"
    work.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "catopt_dsl", *args], cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False)

    r = run("explain", "E0303")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("E0303: affine expression required")
    r = run("init", "proj")
    assert r.returncode == 0, r.stderr
    r = run("check", "proj/plan.cat")
    assert r.returncode == 0, r.stderr
    where = subprocess.run([sys.executable, "-c", "import catopt_dsl.resources as r; print(r.errors_doc_path())"], cwd=work, env=env, capture_output=True, text=True, check=False)
    assert where.stdout.strip().startswith(str(site)), where.stdout
