"""Every ErrorCode is documented in docs/errors.md and exercised by the bad-spec corpus.

docs/errors.md has one `## E0xxx: title` section per code with a failing example; examples in
```cat blocks are complete specs and are checked here to produce their section's code.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from catopt_dsl.compile import check_file
from catopt_dsl.errors import TITLES, ErrorCode

ROOT = Path(__file__).resolve().parent.parent
ERRORS_MD = ROOT / "docs" / "errors.md"
BAD_DIR = ROOT / "tests" / "cases" / "bad"

# Codes whose inputs cannot be a text file in the corpus: non-UTF-8 bytes (E0003), generated deep
# nesting (E0004) and an unreadable/missing input path (E0005). They are tested with generated
# inputs by the parser's own tests. The registry codes (E08xx) need a registry beside the spec;
# tests/registry/test_cli.py exercises each of them.
TESTED_ELSEWHERE = {
    ErrorCode.ENCODING,
    ErrorCode.TOO_DEEP,
    ErrorCode.UNREADABLE,
    ErrorCode.REGISTRY_INCOMPATIBLE,
    ErrorCode.REGISTRY_MISMATCH,
    ErrorCode.REGISTRY_UNREGISTERED,
    ErrorCode.REGISTRY_SEQUENCE,
    ErrorCode.UNUSED_PARAM,  # warnings: tests/check/test_warnings.py
    ErrorCode.FREE_VAR,
    ErrorCode.HEURISTIC,  # a warning that needs a tenant's loss module: tests/adapters/test_spec_adapters.py
}

#: codes that are warnings: their documented example must warn (it may not be an error)
WARNING_CODES = {"E0507", "E0508", "E0803", "E0903"}

HEADING = re.compile(r"^## (E\d{4}): (.+)$", re.MULTILINE)
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXPECT = re.compile(r"^//\s*expect:\s*(E\d{4})\b", re.MULTILINE)


def sections() -> dict[str, tuple[str, str]]:
    """code -> (title, body text up to the next section)."""
    text = ERRORS_MD.read_text(encoding="utf-8")
    heads = list(HEADING.finditer(text))
    out: dict[str, tuple[str, str]] = {}
    for k, m in enumerate(heads):
        end = heads[k + 1].start() if k + 1 < len(heads) else len(text)
        assert m.group(1) not in out, f"{m.group(1)} documented twice"
        out[m.group(1)] = (m.group(2).strip(), text[m.end() : end])
    return out


def corpus_codes() -> set[str]:
    codes: set[str] = set()
    for case in BAD_DIR.glob("*.cat"):
        codes.update(EXPECT.findall(case.read_text(encoding="utf-8")))
    return codes


def test_every_code_is_documented_with_title_example_and_fix() -> None:
    docs = sections()
    missing = [c.value for c in ErrorCode if c.value not in docs]
    assert not missing, f"undocumented codes: {missing}"
    for code in ErrorCode:
        title, body = docs[code.value]
        assert title == TITLES[code], f"{code.value}: heading says {title!r}, errors.py says {TITLES[code]!r}"
        assert FENCE.search(body), f"{code.value}: no failing example in a code block"
        assert "**Fix:**" in body, f"{code.value}: no fix"


def test_no_stale_codes_in_docs() -> None:
    known = {c.value for c in ErrorCode}
    stale = sorted(set(sections()) - known)
    assert not stale, f"docs/errors.md documents codes that do not exist: {stale}"


def test_every_code_is_exercised_by_the_corpus() -> None:
    covered = corpus_codes()
    unknown = sorted(covered - {c.value for c in ErrorCode})
    assert not unknown, f"corpus expects codes that do not exist: {unknown}"
    untested = [c.value for c in ErrorCode if c.value not in covered and c not in TESTED_ELSEWHERE]
    assert not untested, f"codes with no corpus case and not in the allow-list: {untested}"


def doc_examples() -> list[tuple[str, str]]:
    out = []
    for code, (_, body) in sections().items():
        for m in FENCE.finditer(body):
            if m.group(1) == "cat":
                out.append((code, m.group(2)))
    return out


@pytest.mark.parametrize(("code", "source"), doc_examples(), ids=[c for c, _ in doc_examples()])
def test_documented_example_fails_with_its_code(
    code: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Data-file examples load from data/; give them the corpus's (deliberately broken) data.
    shutil.copytree(BAD_DIR / "data", tmp_path / "spec" / "data")
    spec = tmp_path / "spec" / "example.cat"
    spec.write_text(source, encoding="utf-8")
    monkeypatch.chdir(tmp_path / "spec")
    diags = list(check_file(Path("example.cat")))
    wanted = "warning" if code in WARNING_CODES else "error"
    codes = sorted({d.code.value for d in diags if d.severity.value == wanted})
    assert code in codes, f"docs/errors.md example for {code} produced {codes} ({wanted}s)"
