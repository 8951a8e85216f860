"""The syntax-error corpus: broken specs with several mistakes each, and what `catoptc check` says.

Each case ``tests/cases/syntax/NNN_name.cat`` starts with a line

    // errors: 6 7 10

naming the lines of every syntax error the file holds (a line twice if it holds two). The parser
must report exactly those: every error, however many there are, and nothing that follows on from
one. Next to each case, ``NNN_name.out`` is the golden text `catoptc check` prints for it, compared
exactly (message, caret, expected list, hints).

Set CATOPT_UPDATE_GOLDEN=1 to rewrite the `.out` files from the current compiler (then review the
diff); the `// errors:` lines are written by hand and never rewritten.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from catopt_dsl.cli import main
from catopt_dsl.compile import check_file
from catopt_dsl.diagnostics import Severity

SYNTAX_DIR = Path(__file__).resolve().parent / "cases" / "syntax"
ERRORS_RE = re.compile(r"^//\s*errors:((?:\s+\d+)+)\s*$")
UPDATE = bool(os.environ.get("CATOPT_UPDATE_GOLDEN"))
#: the codes the parser reports; a case holds syntax errors only
SYNTAX_CODES = {"E0001", "E0002"}


def case_files() -> list[Path]:
    return sorted(SYNTAX_DIR.glob("*.cat"))


def declared_lines(case: Path) -> list[int]:
    first = case.read_text(encoding="utf-8").splitlines()[0]
    m = ERRORS_RE.match(first)
    assert m, f"{case.name}: the first line must be `// errors: LINE ...`"
    return sorted(int(n) for n in m.group(1).split())


def test_corpus_is_large_and_holds_several_errors_per_file() -> None:
    cases = case_files()
    assert len(cases) >= 30, f"only {len(cases)} cases"
    for case in cases:
        assert re.fullmatch(r"\d{3}_[a-z0-9_]+\.cat", case.name), f"badly named case {case.name}"
        assert (case.with_suffix(".out")).exists() or UPDATE, f"{case.name} has no golden .out (set CATOPT_UPDATE_GOLDEN=1)"
    multi = [c for c in cases if len(declared_lines(c)) >= 2]
    assert len(multi) >= 25, f"only {len(multi)} cases hold two errors or more"
    assert sum(len(declared_lines(c)) for c in cases) >= 90


@pytest.mark.parametrize("case", case_files(), ids=lambda p: p.stem)
def test_every_syntax_error_is_reported_once(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SYNTAX_DIR)
    diags = [d for d in check_file(Path(case.name)) if d.severity is Severity.ERROR]
    got = Counter(d.span.line for d in diags)
    want = Counter(declared_lines(case))
    assert got == want, (
        f"{case.name}: syntax errors on lines {sorted(got.elements())}, the case declares {sorted(want.elements())}:\n"
        + "\n".join(f"  {d.span.line}:{d.span.col} {d.code.value} {d.message}" for d in diags)
    )
    assert {d.code.value for d in diags} <= SYNTAX_CODES, [d.code.value for d in diags]


@pytest.mark.parametrize("case", case_files(), ids=lambda p: p.stem)
def test_check_output_matches_golden(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SYNTAX_DIR)
    result = CliRunner().invoke(main, ["check", case.name])
    assert result.exit_code == 1, f"exit {result.exit_code}:\n{result.output}"
    assert result.stdout == ""
    golden = case.with_suffix(".out")
    if UPDATE:
        golden.write_text(result.stderr, encoding="utf-8")
    assert result.stderr == golden.read_text(encoding="utf-8"), f"{case.name}: output differs from {golden.name}"


# Each mistake the language's users make most, the case that holds it, and what the help must say.
MISTAKES = [
    ("`sum(x) = 1`", "002_assignment_in_constraint", 9, "write `==` for an equality constraint"),
    ("`x**2`", "003_power_operators", 8, "there is no power operator"),
    ("`x^2`", "003_power_operators", 11, "there is no power operator"),
    ("`x < 1`", "004_strict_and_unicode_relations", 9, "strict inequalities are not supported: write `<=`"),
    ("`≤`", "004_strict_and_unicode_relations", 11, "write `<=`: operators are ASCII"),
    ("`minimise`", "005_keyword_typos", 7, "did you mean `minimize`?"),
    ("`LocalProblm`", "005_keyword_typos", 5, "did you mean `LocalProblem`?"),
    ("`subject_to`", "005_keyword_typos", 8, "write `subject to` (separate words)"),
    ("a missing `;`", "001_missing_semicolons", 7, "a `;` may be missing at the end of the previous statement"),
    ("a missing `}`", "027_item_keyword_inside_body", 9, "a `}` may be missing before this item"),
]


@pytest.mark.parametrize(("what", "case", "line", "text"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_the_common_mistakes_get_their_hint(what: str, case: str, line: int, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SYNTAX_DIR)
    diags = [d for d in check_file(Path(case + ".cat")) if d.span.line == line]
    helps = [n.message for d in diags for n in d.notes if n.kind == "help"]
    assert any(text in h for h in helps), f"{what}: no help containing {text!r} on line {line}: {helps}"
