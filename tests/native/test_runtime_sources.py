"""The static native runtimes (``native/rust``, ``native/cpp``) are real source: they build and pass
their own tests without any plan (``cargo test``; CMake + ctest with the strict warning flags), they
are formatted (rustfmt; clang-format where it is installed), and the backends copy them unchanged."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from nativetools import ROOT, STRICT_CXX, NativeBuilds, cargo_env, run

from catopt_dsl.backends.cpp import render_cpp
from catopt_dsl.backends.rust import render_rust
from catopt_dsl.compile import load_plan

NATIVE = ROOT / "native"
RUST_SOURCES = sorted((NATIVE / "rust").rglob("*.rs"))
CPP_SOURCES = sorted(p for p in (NATIVE / "cpp").rglob("*") if p.suffix in {".hpp", ".cpp"})


def _copy(src: Path, dest: Path) -> Path:
    # Built from a copy: cargo writes Cargo.lock next to Cargo.toml, CMake its build folder.
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("target", "build", "Cargo.lock"))
    return dest


def test_rust_runtime_passes_its_own_tests(native_builds: NativeBuilds, need_rust: None, tmp_path: Path) -> None:
    crate = _copy(NATIVE / "rust", tmp_path / "rust")
    out = run(["cargo", "test", "--offline", "-q"], crate, cargo_env(native_builds.target_dir))
    assert "test result: ok" in out and "FAILED" not in out


def test_cpp_runtime_passes_its_own_tests(need_cpp: None, tmp_path: Path) -> None:
    src = _copy(NATIVE / "cpp", tmp_path / "cpp")
    build = tmp_path / "build"
    flags = STRICT_CXX.replace("-std=c++17 ", "")
    run(["cmake", "-S", str(src), "-B", str(build), f"-DCMAKE_CXX_FLAGS={flags}", "-DCMAKE_BUILD_TYPE="], tmp_path)
    run(["cmake", "--build", str(build), "-j", "2"], tmp_path)
    out = run(["ctest", "--test-dir", str(build), "--output-on-failure"], tmp_path)
    assert "100% tests passed" in out


def test_rust_runtime_is_rustfmt_clean() -> None:
    rustfmt = shutil.which("rustfmt")
    if rustfmt is None:
        pytest.skip("rustfmt is not installed")
    config = NATIVE / "rust" / "rustfmt.toml"
    run([rustfmt, "--check", "--config-path", str(config), *map(str, RUST_SOURCES)], ROOT)


def test_cpp_runtime_is_clang_format_clean() -> None:
    clang_format = shutil.which("clang-format")
    if clang_format is None:
        pytest.skip("clang-format is not installed (pip install clang-format)")
    # --style=file finds native/cpp/.clang-format from each file's folder upwards.
    run([clang_format, "--dry-run", "--Werror", "--style=file", *map(str, CPP_SOURCES)], ROOT)


def test_format_checks_see_every_runtime_file() -> None:
    names = {p.relative_to(NATIVE).as_posix() for p in RUST_SOURCES + CPP_SOURCES}
    assert {"rust/src/runtime.rs", "cpp/catopt_runtime.hpp", "cpp/catopt_runtime.cpp"} <= names


@pytest.mark.parametrize("spec", ["examples/gpu_fleet.cat", "tests/cases/keywords/keywords.cat"])
def test_backends_copy_the_runtime_unchanged(spec: str) -> None:
    plan = load_plan(ROOT / spec)
    rust, _ = render_rust(plan)
    cpp = render_cpp(plan)
    assert rust["src/runtime.rs"] == (NATIVE / "rust" / "src" / "runtime.rs").read_text(encoding="utf-8")
    for name in ("catopt_runtime.hpp", "catopt_runtime.cpp"):
        assert cpp[name] == (NATIVE / "cpp" / name).read_text(encoding="utf-8")
    # the per-plan namespace comes from the generated config header, not from the runtime
    assert f"#define CATOPT_RT_NAMESPACE catopt_{Path(spec).stem}\n" in cpp["catopt_runtime_config.hpp"]


def _check_with_runtime(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """``rustc`` (analysis only) on ``body`` with the runtime as a module, unused results denied."""
    src = tmp_path / "lib.rs"
    runtime = (NATIVE / "rust" / "src" / "runtime.rs").as_posix()
    src.write_text(f'#[path = "{runtime}"]\npub mod runtime;\nuse runtime as rt;\n{body}\n', encoding="utf-8")
    cmd = ["rustc", "--edition", "2021", "--crate-type", "lib", "--emit", "metadata", "-D", "unused_must_use",
           "--out-dir", str(tmp_path), str(src)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("call", ["rt::solve_plan(plan, &mut [], rt::Options::default())",
                                  "rt::Coordinator::new(plan, rt::Options::default()).solve(&mut [])"])
def test_rust_solve_results_are_must_use(call: str, need_rust: None, tmp_path: Path) -> None:
    """Dropping a solve's result unread (its status with it) is a compile error under
    ``-D unused_must_use``; reading it is not."""
    plan = 'rt::PlanSpec { name: "p", shared: vec![], objects: vec![], couplings: vec![] }'
    used = _check_with_runtime(tmp_path, f"pub fn f() -> bool {{ let plan = {plan}; let r = {call}; r == r }}")
    assert used.returncode == 0, used.stderr
    dropped = _check_with_runtime(tmp_path, f"pub fn f() {{ let plan = {plan}; {call}; }}")
    assert dropped.returncode != 0 and "that must be used" in dropped.stderr, dropped.stderr
