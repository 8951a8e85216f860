"""Session fixtures of the native tests: one temp root, one shared CARGO_TARGET_DIR, and each
example built once per language (the build test, the reference comparison and the handle check
all read the same build's output)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nativetools import ROOT, build_cpp, build_rust, cpp_extra_program, missing_tools, rust_extra_test  # noqa: E402

from catopt_dsl.compile import load_plan  # noqa: E402
from catopt_dsl.ir.model import IRPlan  # noqa: E402

#: specs built natively: every example plus the keyword spec
NATIVE_SPECS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.cat")) + [
    "tests/cases/keywords/keywords.cat"
]
#: examples compared with the Python reference (consensus, sharing, both)
REFERENCE_SPECS = ["examples/consensus_lasso.cat", "examples/gpu_fleet.cat", "examples/mixed_plan.cat"]


class NativeBuilds:
    """Builds on demand, caches output (or the failure) per (spec, language)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.target_dir = root / "cargo-target"
        self._plans: dict[str, IRPlan] = {}
        self._out: dict[tuple[str, str], str | AssertionError] = {}

    def plan(self, spec: str) -> IRPlan:
        if spec not in self._plans:
            self._plans[spec] = load_plan(ROOT / spec)
        return self._plans[spec]

    def output(self, spec: str, lang: str) -> str:
        key = (spec, lang)
        if key not in self._out:
            plan = self.plan(spec)
            reference = spec in REFERENCE_SPECS
            dest = self.root / lang / Path(spec).stem
            try:
                if lang == "rust":
                    self._out[key] = build_rust(plan, dest, self.target_dir, {"tests/native_extra.rs": rust_extra_test(plan, reference)})
                else:
                    self._out[key] = build_cpp(plan, dest, cpp_extra_program(plan, reference))
            except AssertionError as exc:
                self._out[key] = exc
        result = self._out[key]
        if isinstance(result, AssertionError):
            raise result
        return result


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
