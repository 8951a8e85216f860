"""Shared fixtures: the project's own adapters must be registered through the entry points."""

from __future__ import annotations

import importlib.metadata

import pytest

STARTERS = ("cpu", "cuda", "jax", "torch")


@pytest.fixture(scope="session", autouse=True)
def _entry_points_installed() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="catopt.adapters")}
    missing = [n for n in STARTERS if n not in names]
    if missing:
        pytest.fail(
            f"the catopt.adapters entry points {missing} are not installed: the package metadata predates "
            "pyproject.toml's [project.entry-points] table; run `pip install -e .` (test.sh does)",
            pytrace=False,
        )
