"""CHANGELOG.md follows Keep a Changelog and its newest release is the package's version."""

from __future__ import annotations

import re
from pathlib import Path

import catopt_dsl

ROOT = Path(__file__).resolve().parents[1]


def test_the_newest_release_is_the_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, flags=re.MULTILINE)
    assert releases, "no `## [VERSION] - DATE` heading"
    newest = next(v for v, _ in releases if v != "Unreleased")
    assert newest == catopt_dsl.__version__
    assert all(date for v, date in releases if v != "Unreleased"), "every release heading has a date"
    # each release says what it added, changed or fixed
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        assert re.search(r"^### (Added|Changed|Deprecated|Removed|Fixed|Security)$", section, flags=re.MULTILINE), section[:40]
