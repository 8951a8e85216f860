"""Suite-wide collection rules.

The fast loop (`pytest -m "not slow"`) must stay under 3 minutes on 2 cores. Tests that compile
native code, start Ray or fuzz for seconds are marked slow here, by module or by test name, so the
rule lives in one place (test.sh runs them all).
"""

from __future__ import annotations

import pytest

#: every test of these modules compiles a Rust crate or a C++ project
SLOW_MODULES = (
    "tests/native/test_admm_reference.py",
    "tests/native/test_native_build.py",
    "tests/runtime/test_native_certificates.py",
)

#: single tests that take several seconds each (Ray start-up, native builds, long fuzzing)
SLOW_TESTS = (
    "tests/native/test_runtime_sources.py::test_cpp_runtime_passes_its_own_tests",
    "tests/native/test_runtime_sources.py::test_rust_runtime_passes_its_own_tests",
    "tests/runtime/test_ray_backend.py::test_ray_matches_in_process",
    "tests/language/test_fuzz_check.py::test_mutated_examples_never_raise",
    "tests/benchmarks/test_bench_smoke.py::test_quick_compiler_run_writes_both_reports",
    "tests/runtime/test_distributed_faults.py::test_batched_nodes_and_bounded_staleness_still_converge",
    "tests/adapters/test_federated_data.py::test_tenant_losses_agree_with_numpy",
    "tests/language/test_limits.py::test_objects_cap_is_checked_before_expanding",
    "tests/runtime/test_async.py::test_async_converges",
    "tests/registry/test_docs_curl.py::test_documented_curl_examples",
    "tests/test_generated.py::test_generated_python_passes_mypy_strict",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = pytest.mark.slow
    for item in items:
        path, _, name = item.nodeid.partition("::")
        if path in SLOW_MODULES or f"{path}::{name.split('[', 1)[0]}" in SLOW_TESTS:
            item.add_marker(slow)
