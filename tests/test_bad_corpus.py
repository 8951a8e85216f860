"""The bad-spec corpus: every file under tests/cases/bad/ must produce the diagnostics it expects.

Each case starts with one or more lines

    // expect: E0101 at 7:12
    // expect: E0103 at 4:1 in _imports/cycle_b.cat

(code, 1-based line:col of the primary caret, and optionally the file the diagnostic points into,
relative to the case's folder). Only the listed diagnostics are required; a case may produce more
(follow-on errors), because pinning every follow-on would make the corpus brittle for no gain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import check_file
from catopt_dsl.diagnostics import Diagnostic, Severity

BAD_DIR = Path(__file__).resolve().parent / "cases" / "bad"
EXPECT_RE = re.compile(r"^//\s*expect:\s*(E\d{4})\s+at\s+(\d+):(\d+)(?:\s+in\s+(\S+))?\s*$")


@dataclass(frozen=True)
class Expect:
    code: str
    line: int
    col: int
    file: str | None  # relative to BAD_DIR; None means the case file itself

    def shown_file(self, case: Path) -> str:
        return self.file if self.file is not None else case.name


def case_files() -> list[Path]:
    return sorted(BAD_DIR.glob("*.cat"))


def expectations(case: Path) -> list[Expect]:
    out: list[Expect] = []
    for line in case.read_text(encoding="utf-8").splitlines():
        if not line.startswith("//"):
            break  # expectations sit in the leading comment block only
        m = EXPECT_RE.match(line)
        if m:
            out.append(Expect(m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)))
    return out


def _same_file(span_file: str, expected: Path) -> bool:
    # Spans carry display names (relative to the working directory when possible); accept either
    # a path that resolves to the expected file or one that ends with its relative name.
    if Path(span_file).resolve() == expected.resolve():
        return True
    rel = expected.relative_to(BAD_DIR).as_posix()
    return Path(span_file).as_posix().endswith(rel)


def _matches(d: Diagnostic, e: Expect, case: Path) -> bool:
    target = BAD_DIR / e.file if e.file is not None else case
    return (
        d.severity is Severity.ERROR
        and d.code.value == e.code
        and d.span.line == e.line
        and d.span.col == e.col
        and _same_file(d.span.file, target)
    )


def _describe(diags: list[Diagnostic]) -> str:
    return "\n".join(f"  {d.span}: {d.code.value} {d.message}" for d in diags) or "  (no diagnostics)"


def test_corpus_is_large_enough() -> None:
    cases = case_files()
    assert len(cases) >= 45, f"only {len(cases)} bad cases"
    for case in cases:
        assert expectations(case), f"{case.name} has no `// expect:` line"
        assert re.fullmatch(r"\d{3}_[a-z0-9_]+\.cat", case.name), f"badly named case {case.name}"


@pytest.mark.parametrize("case", case_files(), ids=lambda p: p.stem)
def test_check_file_reports_expected(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD_DIR)
    diags = list(check_file(Path(case.name)))
    for e in expectations(case):
        assert any(
            _matches(d, e, case) for d in diags
        ), f"{case.name}: expected {e.code} at {e.shown_file(case)}:{e.line}:{e.col}; got\n{_describe(diags)}"


_CARET_LINE = re.compile(r"^\s*\|\s*\^~*\s*$", re.MULTILINE)


@pytest.mark.parametrize("case", case_files(), ids=lambda p: p.stem)
def test_cli_check_renders_expected(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BAD_DIR)
    result = CliRunner().invoke(main, ["check", case.name])
    assert result.exit_code == 1, f"exit {result.exit_code}; output:\n{result.output}"
    for e in expectations(case):
        head = f"{e.shown_file(case)}:{e.line}:{e.col}: error[{e.code}]"
        assert head in result.output, f"missing `{head}` in:\n{result.output}"
    assert _CARET_LINE.search(result.output), f"no caret line in:\n{result.output}"
