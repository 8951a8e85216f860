"""`catoptc compile --check`: pinned generated code is compared with a fresh emission, nothing is
written, and any added, missing or changed file fails (exit 1) naming the file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from catopt_dsl.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "examples" / "gpu_fleet.cat")


def test_compile_check(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    assert CliRunner().invoke(main, ["compile", SPEC, "--target", "all", "--out", str(out)]).exit_code == 0
    (out / "rust" / "target").mkdir()
    (out / "rust" / "target" / "build-output").write_text("cargo's, not ours")  # ignored
    res = CliRunner().invoke(main, ["compile", SPEC, "--target", "all", "--out", str(out), "--check"])
    assert res.exit_code == 0, res.output
    plans = out / "rust" / "src" / "plans.rs"
    plans.write_text(plans.read_text() + "// edited\n")
    (out / "cpp" / "gpu_fleet_c.h").unlink()
    (out / "python" / "gpu_fleet" / "extra.py").write_text("")
    before = plans.read_bytes()
    res = CliRunner().invoke(main, ["compile", SPEC, "--target", "all", "--out", str(out), "--check"])
    assert res.exit_code == 1
    assert "differs: " in res.output and "plans.rs" in res.output
    assert "missing: " in res.output and "gpu_fleet_c.h" in res.output
    assert "not generated: " in res.output and "extra.py" in res.output
    assert plans.read_bytes() == before  # --check writes nothing
    assert not (out / "cpp" / "gpu_fleet_c.h").exists()
