"""Session fixtures of the native tests: one temp root, one shared CARGO_TARGET_DIR, and each
example built once per language (the build test, the reference comparison and the handle check
all read the same build's output)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nativetools import NativeBuilds, missing_tools  # noqa: E402

@pytest.fixture(scope="session")
def native_builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeBuilds]:
    yield NativeBuilds(tmp_path_factory.mktemp("native"))


@pytest.fixture(scope="session")
def need_rust() -> None:
    missing = missing_tools("cargo")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


@pytest.fixture(scope="session")
def need_cpp() -> None:
    missing = missing_tools("g++", "cmake")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
