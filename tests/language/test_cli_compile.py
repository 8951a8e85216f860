"""`catoptc compile` never overwrites what the user had; it replaces only folders it wrote itself."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from catopt_dsl.cli import main

REPO = Path(__file__).resolve().parents[2]
SPEC = str(REPO / "examples" / "gpu_fleet.cat")


def test_refuses_to_overwrite_a_user_folder(tmp_path: Path) -> None:
    mine = tmp_path / "out" / "python"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my work")
    result = CliRunner().invoke(main, ["compile", SPEC, "--target", "python", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.output
    assert (mine / "notes.txt").read_text() == "my work"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_replaces_its_own_output_and_force_replaces_a_user_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = CliRunner().invoke(main, ["compile", SPEC, "--target", "python", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert (out / "python" / ".catoptc-generated").exists()
    (out / "python" / "stale.py").write_text("# left over")
    again = CliRunner().invoke(main, ["compile", SPEC, "--target", "python", "--out", str(out)])
    assert again.exit_code == 0 and not (out / "python" / "stale.py").exists()
    user = tmp_path / "u" / "python"
    user.mkdir(parents=True)
    (user / "x").write_text("x")
    forced = CliRunner().invoke(main, ["compile", SPEC, "--target", "python", "--out", str(tmp_path / "u"), "--force"])
    assert forced.exit_code == 0 and not (user / "x").exists()


def test_a_spec_with_errors_writes_nothing(tmp_path: Path) -> None:
    bad = REPO / "tests" / "cases" / "bad" / "035_minimize_sqrt.cat"
    result = CliRunner().invoke(main, ["compile", str(bad), "--target", "python", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "error[E0301]" in result.output
    assert not (tmp_path / "o").exists()
