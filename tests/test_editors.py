"""The TextMate grammar (editors/textmate/, usable by VS Code and GitHub-style highlighters)
tokenises every example and plan case without an `invalid` scope, tokenised by vscode-textmate
itself (the engine VS Code runs), and does flag a character the language does not have."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TM = ROOT / "editors" / "textmate"

pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js and npm")


@pytest.fixture(scope="module")
def tokenize() -> object:
    if not (TM / "node_modules" / "vscode-textmate").exists():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=TM, check=True, timeout=600)

    def run(*files: Path) -> tuple[int, dict[str, dict[str, list[str]]]]:
        done = subprocess.run(["node", str(TM / "tokenize.mjs"), *map(str, files)], capture_output=True, text=True, timeout=120)
        return done.returncode, json.loads(done.stdout)

    return run


def test_every_example_and_plan_case_tokenises_without_invalid_scopes(tokenize) -> None:  # type: ignore[no-untyped-def]
    files = sorted(ROOT.glob("examples/**/*.cat")) + sorted((ROOT / "tests" / "plans" / "cases").glob("*.cat"))
    code, report = tokenize(*files)
    bad = {Path(f).name: r["invalid"] for f, r in report.items() if r["invalid"]}
    assert code == 0 and not bad, bad
    scopes = {s for r in report.values() for s in r["scopes"]}
    for wanted in ("storage.type.item.catopt", "keyword.control.sense.catopt", "support.function.atom.catopt",
                   "constant.numeric.version.catopt", "comment.line.double-slash.catopt", "string.quoted.double.catopt"):
        assert wanted in scopes, wanted


def test_a_character_outside_the_language_is_invalid(tokenize, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "bad.cat"
    spec.write_text("catopt 1;\nLocalProblem a { var x: float; minimize x ^ 2 $; }\n", encoding="utf-8")
    code, report = tokenize(spec)
    assert code == 1
    assert [i.split(" ", 1)[1] for i in report[str(spec)]["invalid"]] == ['"^"', '"$"']
