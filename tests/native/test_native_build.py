"""Acceptance 1 and 2: every example (and the keyword spec) builds with warnings as errors and
passes its generated tests, in Rust (`cargo build` / `cargo test`, RUSTFLAGS=-Dwarnings) and C++
(`-Wall -Wextra -Werror -pedantic`, C++17, through CMake + ctest). The same builds prove that the
typed handles embed every param bit-exactly (CRC32C of the bytes, per member and param)."""

from __future__ import annotations

import pytest
from nativetools import NATIVE_SPECS, NativeBuilds, param_crcs, parse_params

SLOW = {"examples/sites_200.cat"}


def _specs() -> list[object]:
    return [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in NATIVE_SPECS]


@pytest.mark.parametrize("spec", _specs())
def test_rust_crate_builds_and_passes(spec: str, native_builds: NativeBuilds, need_rust: None) -> None:
    out = native_builds.output(spec, "rust")
    assert "test result: ok" in out
    assert "FAILED" not in out
    # params: every member's every param arrives bit-exactly
    assert parse_params(out) == param_crcs(native_builds.plan(spec))


@pytest.mark.parametrize("spec", _specs())
def test_cpp_project_builds_and_passes(spec: str, native_builds: NativeBuilds, need_cpp: None) -> None:
    out = native_builds.output(spec, "cpp")
    assert "100% tests passed" in out
    assert parse_params(out) == param_crcs(native_builds.plan(spec))
