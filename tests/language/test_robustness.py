"""No input may produce a Python traceback: every hostile input gets a diagnostic and exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import analyze

REPO = Path(__file__).resolve().parents[2]


def _check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


HOSTILE: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "E0006"),
    "only_comment": (b"// nothing here\n", "E0006"),
    "binary": (bytes(range(256)) * 8, "E0003"),
    "invalid_utf8": (b"catopt 1;\nLocalProblem a\xff\xfe { }\n", "E0003"),
    "nested_parens": (b"catopt 1;\nLocalProblem a { var x: float; minimize " + b"(" * 10_000 + b"x" + b")" * 10_000 + b"; }\n", "E0004"),
    "nested_brackets": (b"catopt 1;\nLocalProblem a { param p: float = " + b"[" * 5_000 + b"; }", "E0004"),
    "long_sum": (b"catopt 1;\nLocalProblem a { var x: float; minimize " + b"+".join([b"x"] * 5_000) + b"; }\n", "E0004"),
    "unterminated_string": (b'catopt 1;\nimport "abc;\n', "E0002"),
    "unterminated_comment": (b"catopt 1;\n/* never closed\nLocalProblem a {}", "E0002"),
    "header_only": (b"catopt 1;\n", "E0506"),
    "wrong_version": (b"catopt 99;\nLocalProblem a { var x: float; minimize x; }", "E0006"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_gets_a_diagnostic(tmp_path: Path, name: str) -> None:
    data, code = HOSTILE[name]
    spec = tmp_path / f"{name}.cat"
    spec.write_bytes(data)
    status, output = _check(spec)
    assert status == 1
    assert f"error[{code}]" in output, output
    assert "Traceback" not in output


def test_directory_instead_of_file(tmp_path: Path) -> None:
    status, output = _check(tmp_path)
    assert status == 1
    assert "error[E0005]" in output and "is a directory" in output


def test_missing_file(tmp_path: Path) -> None:
    status, output = _check(tmp_path / "nope.cat")
    assert status == 1 and "error[E0005]" in output


def test_twenty_megabyte_file_is_refused_cleanly(tmp_path: Path) -> None:
    spec = tmp_path / "huge.cat"
    line = b"// " + b"x" * 1021 + b"\n"
    spec.write_bytes(b"catopt 1;\n" + line * (20 * 1024))
    assert spec.stat().st_size > 20_000_000
    status, output = _check(spec)
    assert status == 1 and "error[E0005]" in output and "MiB" in output


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    """The real entry point, in a subprocess: the user sees diagnostics, never Python internals."""
    spec = tmp_path / "garbage.cat"
    spec.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "catopt_dsl", "check", str(spec)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 1
    assert "error[E0003]" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_usage_error_exits_2() -> None:
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, ["solve", "x.cat", "--rho", "-1"])
    assert result.exit_code == 2


def test_analyze_text_never_raises_on_truncations() -> None:
    """Every prefix of a real example (cut at each line) analyses without an exception."""
    text = (REPO / "examples" / "plan_deltas.cat").read_text()
    for cut in range(0, len(text), max(1, len(text) // 60)):
        a = analyze(REPO / "examples" / "fuzz.cat", text=text[:cut])
        assert isinstance(a.diagnostics, list)
