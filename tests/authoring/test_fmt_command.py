"""`catoptc fmt`: in place, atomically, `--check` for CI; and a formatted spec compiles the same.

What "the same" means: the spec hash covers the spec's *text* (and its imports' and data), so it
must change when the text does. Everything else must not: the IR (``plan_to_dict`` with every
``spec_hash`` left out) is equal, and every generated file of every target is byte-identical once
each plan's hash is replaced by a placeholder. Comparing the IR alone would miss a backend that
reads spans or spellings; comparing files alone would hide where a difference came from.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
UNFORMATTED = "catopt 1;\nLocalProblem t{var x:float;minimize square(x-1);}\n"
FORMATTED = "catopt 1;\n\nLocalProblem t {\n    var x: float;\n    minimize square(x - 1);\n}\n"


def _run(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, stdin: str | None = None) -> Any:
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(main, args, input=stdin)


def test_fmt_rewrites_in_place_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.cat").write_text(UNFORMATTED)
    (tmp_path / "b.cat").write_text(FORMATTED)
    os.chmod(tmp_path / "a.cat", 0o640)
    r = _run(["fmt", "a.cat", "b.cat"], tmp_path, monkeypatch)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a.cat").read_text() == FORMATTED
    assert (tmp_path / "b.cat").read_text() == FORMATTED
    assert oct((tmp_path / "a.cat").stat().st_mode & 0o777) == oct(0o640)
    assert "reformatted a.cat" in r.stderr and "1 file reformatted, 1 file already formatted" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.cat", "b.cat"]  # no temporary file left


def test_fmt_check_writes_nothing_and_fails_when_a_file_would_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.cat").write_text(UNFORMATTED)
    (tmp_path / "b.cat").write_text(FORMATTED)
    r = _run(["fmt", "--check", "a.cat", "b.cat"], tmp_path, monkeypatch)
    assert r.exit_code == 1
    assert "would reformat a.cat" in r.stderr and "b.cat" not in r.stderr.replace("1 file already formatted", "")
    assert (tmp_path / "a.cat").read_text() == UNFORMATTED
    r = _run(["fmt", "--check", "b.cat"], tmp_path, monkeypatch)
    assert r.exit_code == 0, r.output


def test_fmt_leaves_a_file_that_does_not_parse_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = "catopt 1;\nLocalProblem t {\n    var x: float\n    minimize square(x);\n}\n"
    (tmp_path / "a.cat").write_text(broken)
    (tmp_path / "b.cat").write_text(UNFORMATTED)
    r = _run(["fmt", "a.cat", "b.cat"], tmp_path, monkeypatch)
    assert r.exit_code == 1
    assert "a.cat:4:5: error[E0001]" in r.stderr and "cannot format a.cat" in r.stderr
    assert (tmp_path / "a.cat").read_text() == broken
    assert (tmp_path / "b.cat").read_text() == FORMATTED  # the other file is still formatted


def test_a_failed_write_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.cat").write_text(UNFORMATTED)

    def refuse(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    r = _run(["fmt", "a.cat"], tmp_path, monkeypatch)
    assert r.exit_code == 1
    assert "cannot write a.cat: No space left on device" in r.stderr
    assert (tmp_path / "a.cat").read_text() == UNFORMATTED
    assert [p.name for p in tmp_path.iterdir()] == ["a.cat"]


def test_fmt_through_a_symbolic_link_keeps_the_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real.cat").write_text(UNFORMATTED)
    (tmp_path / "link.cat").symlink_to("real.cat")
    r = _run(["fmt", "link.cat"], tmp_path, monkeypatch)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "link.cat").is_symlink()
    assert (tmp_path / "real.cat").read_text() == FORMATTED


def test_fmt_of_a_folder_formats_the_specs_below_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "specs" / "sub").mkdir(parents=True)
    (tmp_path / "specs" / "a.cat").write_text(UNFORMATTED)
    (tmp_path / "specs" / "sub" / "b.cat").write_text(UNFORMATTED)
    (tmp_path / "specs" / "notes.txt").write_text("not a spec {")
    r = _run(["fmt", "specs"], tmp_path, monkeypatch)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "specs" / "sub" / "b.cat").read_text() == FORMATTED
    assert (tmp_path / "specs" / "notes.txt").read_text() == "not a spec {"
    r = _run(["fmt", "--check", "specs"], tmp_path, monkeypatch)
    assert r.exit_code == 0 and "2 files already formatted" in r.stderr


def test_fmt_reads_standard_input_with_a_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _run(["fmt", "-"], tmp_path, monkeypatch, stdin=UNFORMATTED)
    assert r.exit_code == 0 and r.stdout == FORMATTED
    assert _run(["fmt", "--check", "-"], tmp_path, monkeypatch, stdin=UNFORMATTED).exit_code == 1
    assert _run(["fmt", "--check", "-"], tmp_path, monkeypatch, stdin=FORMATTED).exit_code == 0


@pytest.mark.parametrize("args", [["fmt"], ["fmt", "-", "a.cat"], ["fmt", "empty"]])
def test_fmt_usage_errors(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    assert _run(args, tmp_path, monkeypatch).exit_code == 2


def test_fmt_of_a_missing_file_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _run(["fmt", "nope.cat"], tmp_path, monkeypatch)
    assert r.exit_code == 1 and "error[E0005]" in r.stderr


# ---------------------------------------------------------------------------------------------
# A formatted spec compiles to the same output
# ---------------------------------------------------------------------------------------------


def _without_hashes(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _without_hashes(v) for k, v in d.items() if k != "spec_hash"}
    if isinstance(d, list):
        return [_without_hashes(x) for x in d]
    return d


def _hashes(plan: Any) -> list[str]:
    from catopt_dsl.backends.common import plan_tree

    return [node.plan.spec_hash for node in plan_tree(plan)]


def _generated(plan: Any, out: Path) -> dict[str, bytes]:
    from catopt_dsl.backends.emit import emit_target

    files: dict[str, bytes] = {}
    for target in ("python", "rust", "cpp"):
        for p in emit_target(target, plan, out / target):
            data = p.read_bytes()  # sources, and .npy data
            for k, h in enumerate(_hashes(plan)):
                data = data.replace(h.encode(), f"<spec-hash-{k}>".encode())
            files[p.relative_to(out).as_posix()] = data
    return files


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.cat")))
def test_a_formatted_example_compiles_to_identical_output(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from catopt_dsl.compile import analyze
    from catopt_dsl.ir.serialize import plan_to_dict

    shutil.copytree(EXAMPLES, tmp_path / "examples")
    r = _run(["fmt", "examples"], tmp_path, monkeypatch)  # the imported schemas are formatted too
    assert r.exit_code == 0, r.output
    original = analyze(EXAMPLES / name).plan
    formatted = analyze(tmp_path / "examples" / name).plan
    assert original is not None and formatted is not None
    assert _hashes(original) != _hashes(formatted) or (tmp_path / "examples" / name).read_bytes() == (EXAMPLES / name).read_bytes()
    assert _without_hashes(plan_to_dict(formatted)) == _without_hashes(plan_to_dict(original))
    assert _generated(formatted, tmp_path / "out-formatted") == _generated(original, tmp_path / "out-original")


def test_formatted_plan_cases_lower_to_the_same_ir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from catopt_dsl.compile import analyze
    from catopt_dsl.ir.serialize import plan_to_dict

    cases = ROOT / "tests" / "plans" / "cases"
    shutil.copytree(cases, tmp_path / "cases")
    assert _run(["fmt", "cases"], tmp_path, monkeypatch).exit_code == 0
    compared = 0
    for spec in sorted(cases.glob("*.cat")):
        a, b = analyze(spec), analyze(tmp_path / "cases" / spec.name)
        assert [d.code for d in a.diagnostics] == [d.code for d in b.diagnostics], spec.name
        if a.plan is not None:
            assert _without_hashes(plan_to_dict(b.plan)) == _without_hashes(plan_to_dict(a.plan)), spec.name
            compared += 1
    assert compared >= 20
