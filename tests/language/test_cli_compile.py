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


def test_a_failed_compile_leaves_the_previous_output_intact(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    first = CliRunner().invoke(main, ["compile", SPEC, "--target", "all", "--out", str(out)])
    assert first.exit_code == 0, first.output
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    import catopt_dsl.backends.emit as emit

    real = emit.emit_target

    def failing(target: str, plan, out_dir: Path):  # type: ignore[no-untyped-def]
        if target == "cpp":  # python and rust are already generated when this fails
            raise OSError(28, "No space left on device")
        return real(target, plan, out_dir)

    monkeypatch.setattr(emit, "emit_target", failing)
    again = CliRunner().invoke(main, ["compile", SPEC, "--target", "all", "--out", str(out)])
    assert again.exit_code == 1 and "No space left on device" in again.output
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in out.iterdir()) == ["cpp", "python", "rust"]  # no staging left behind


def test_out_onto_a_file_a_symlink_or_a_too_long_name_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for out, words in [
        (tmp_path / "file", "is a file"),
        (tmp_path / "link", "symbolic link"),
        (tmp_path / ("x" * 300), "too long"),
    ]:
        result = CliRunner().invoke(main, ["compile", SPEC, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert words in result.output
    assert (tmp_path / "file").read_text() == "mine"
    assert list((tmp_path / "real").iterdir()) == []


def test_a_target_folder_that_is_a_symlink_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("keep")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "python").symlink_to(tmp_path / "mine")
    result = CliRunner().invoke(main, ["compile", SPEC, "--out", str(tmp_path / "out"), "--force"])
    assert result.exit_code == 2 and "refusing" in result.output
    assert (tmp_path / "mine" / "keep.txt").read_text() == "keep"
