"""The spec hash and everything generated depend on content only: one spec compiled from three
working directories, through relative and absolute paths (and a symlinked folder), gives
byte-identical output trees. The spec's file name names the plan; its folder appears nowhere."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import load_plan

REPO = Path(__file__).resolve().parents[2]
# Imports a schema file and loads data: every kind of path the front end resolves.
SPEC = REPO / "examples" / "gpu_fleet.cat"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _compile(cwd: Path, spec: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(main, ["compile", spec, "--target", "all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return _tree(out)


def test_output_does_not_depend_on_the_working_directory_or_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "linked_examples"
    os.symlink(REPO / "examples", link)
    runs = {
        "repo root, relative": _compile(REPO, "examples/gpu_fleet.cat", tmp_path / "o1", monkeypatch),
        "examples/, bare name": _compile(REPO / "examples", "gpu_fleet.cat", tmp_path / "o2", monkeypatch),
        "tests/, dot-dot": _compile(REPO / "tests", "../examples/./gpu_fleet.cat", tmp_path / "o3", monkeypatch),
        "elsewhere, absolute": _compile(elsewhere, str(SPEC), tmp_path / "o4", monkeypatch),
        "elsewhere, through a symlink": _compile(elsewhere, str(link / "gpu_fleet.cat"), tmp_path / "o5", monkeypatch),
    }
    first_name, first = next(iter(runs.items()))
    assert len(first) > 20
    for name, tree in runs.items():
        assert sorted(tree) == sorted(first), f"{name}: file set differs from {first_name}"
        differ = [f for f in tree if tree[f] != first[f]]
        assert not differ, f"{name}: {differ[:5]} differ from {first_name}"
    text = b"".join(first.values())
    for leak in (str(REPO).encode(), str(tmp_path).encode(), b"examples/", b"linked_examples"):
        assert leak not in text, leak


def test_spec_hash_is_content_only(tmp_path: Path) -> None:
    """A copy of the spec folder somewhere else hashes the same; changing one byte changes it."""
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "examples", copy)
    a, b = load_plan(SPEC), load_plan(copy / "gpu_fleet.cat")
    assert a.spec_hash == b.spec_hash
    imported = copy / "schemas" / "common.cat"
    imported.write_text(imported.read_text() + "\n// one more line\n")
    assert load_plan(copy / "gpu_fleet.cat").spec_hash != a.spec_hash
