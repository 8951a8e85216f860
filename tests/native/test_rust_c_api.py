"""The Rust crate's C API (feature ``c-api``, built as a ``cdylib``): the C++ library's functions
under the same names, driven through ctypes by the very calls ``--backend native`` makes, and
giving the C++ library's answer."""

from __future__ import annotations

import ctypes
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from nativetools import ROOT, NativeBuilds, cargo_env, run

from catopt_dsl.backends.rust import c_symbol_prefix, emit_rust
from catopt_dsl.cli import main
from catopt_dsl.compile import load_plan
from catopt_dsl.runtime.native_backend import _load, build_native, run_native
from catopt_dsl.solver import SolveOptions

SPEC = ROOT / "examples" / "gpu_fleet.cat"

pytestmark = pytest.mark.slow


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CATOPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _xs(lib: object, count: int) -> list[np.ndarray]:
    """Every object's glued x through ``<prefix>_x`` after one solve on a fresh handle."""
    dll = _load(lib)  # type: ignore[arg-type]
    p = lib.prefix  # type: ignore[attr-defined]
    getattr(dll, f"{p}_x").argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_double), ctypes.c_size_t]
    getattr(dll, f"{p}_x").restype = ctypes.c_long
    handle = getattr(dll, f"{p}_create")()
    try:
        assert getattr(dll, f"{p}_x")(handle, 0, None, 0) == -1  # before a solve: nothing to read
        assert getattr(dll, f"{p}_solve")(handle) == 0
        out = []
        for i in range(count):
            n = getattr(dll, f"{p}_x")(handle, i, None, 0)
            buf = (ctypes.c_double * n)()
            assert getattr(dll, f"{p}_x")(handle, i, buf, n) == n
            out.append(np.array(buf[:]))
        assert getattr(dll, f"{p}_x")(handle, count, None, 0) == -1  # past the last object
        return out
    finally:
        getattr(dll, f"{p}_free")(handle)


def test_rust_cdylib_gives_the_cpp_librarys_result(cache: Path, need_rust: None) -> None:
    plan = load_plan(SPEC)
    rust = build_native(plan, "rust")
    cpp = build_native(plan, "cpp")
    assert not rust.cached and rust.path != cpp.path and rust.prefix == cpp.prefix == "catopt_gpu_fleet"
    assert build_native(load_plan(SPEC), "rust").cached  # same content: no second cargo build
    opts = SolveOptions(eps_abs=1e-6, eps_rel=1e-6)
    got, want = run_native(rust, opts), run_native(cpp, opts)
    assert got["status"] == want["status"] == "optimal"
    assert math.isclose(got["objective"], want["objective"], rel_tol=1e-9)
    assert abs(got["iterations"] - want["iterations"]) <= 1
    # the plan's optimum (issue: -94.21), not the constraint-free -114.35
    assert math.isclose(got["objective"], -94.21, abs_tol=0.01)
    for a, b in zip(_xs(rust, len(plan.objects)), _xs(cpp, len(plan.objects)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_rust_c_api_rejects_bad_calls_with_a_message(cache: Path, need_rust: None) -> None:
    lib = build_native(load_plan(SPEC), "rust")
    dll = _load(lib)
    p = lib.prefix
    handle = getattr(dll, f"{p}_create")()
    try:
        assert getattr(dll, f"{p}_result_json")(handle) is None  # before a solve
        assert getattr(dll, f"{p}_set_param")(handle, b"alpha", 2.5) == -1
        assert getattr(dll, f"{p}_error")(handle) == b"unknown option or bad value: alpha"
        assert getattr(dll, f"{p}_set_param")(handle, b"max_iter", 3.5) == -1
        assert getattr(dll, f"{p}_set_param")(handle, b"max_iter", 5.0) == 0
        assert getattr(dll, f"{p}_error")(handle) == b""
        assert getattr(dll, f"{p}_set_param")(handle, None, 1.0) == -1
        assert getattr(dll, f"{p}_solve")(handle) == 3  # max_iterations after 5
        data = json.loads(getattr(dll, f"{p}_result_json")(handle))
        assert data["status"] == "max_iterations" and data["iterations"] == 5
    finally:
        getattr(dll, f"{p}_free")(handle)
    assert getattr(dll, f"{p}_error")(None) == b"null handle"
    assert getattr(dll, f"{p}_solve")(None) == -1
    getattr(dll, f"{p}_free")(None)  # a no-op


def test_cli_native_lang_rust(cache: Path, need_rust: None) -> None:
    res = CliRunner().invoke(main, ["solve", str(SPEC), "--backend", "native", "--native-lang", "rust", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["status"] == "optimal" and math.isclose(data["objective"], -94.21, abs_tol=0.01)
    assert any(p.name == "libplan.so" for p in cache.rglob("*"))
    res = CliRunner().invoke(main, ["solve", str(SPEC), "--native-lang", "rust"])
    assert res.exit_code == 2 and "needs --backend native" in res.output


def test_plain_cargo_build_leaves_the_c_api_out(tmp_path: Path, native_builds: NativeBuilds, need_rust: None) -> None:
    """As a dependency (a plain `cargo build`), the crate exports no C symbol and needs no feature."""
    emit_rust(load_plan(SPEC), tmp_path / "crate")
    target = native_builds.target_dir
    run(["cargo", "build", "--offline", "-q", "--lib"], tmp_path / "crate", cargo_env(target))
    rlib = target / "debug" / "libcatopt_gpu_fleet.rlib"
    assert rlib.exists() and b"catopt_gpu_fleet_create" not in rlib.read_bytes()
    assert not list((target / "debug").glob("libcatopt_gpu_fleet.so"))
    # the same crate with the feature: the C API compiles warning-free and the symbols appear
    run(["cargo", "build", "--offline", "-q", "--lib", "--features", "c-api"], tmp_path / "crate", cargo_env(target))
    assert b"catopt_gpu_fleet_create" in rlib.read_bytes()


@pytest.mark.parametrize("spec", ["tests/cases/keywords/keywords.cat", "tests/cases/naming/edges.cat"])
def test_c_api_compiles_for_hostile_names(spec: str, tmp_path: Path, native_builds: NativeBuilds, need_rust: None) -> None:
    """Keyword plan names (`gen`), stems that start with a digit: the C API's module compiles
    warning-free, with the C++ library's symbol prefix."""
    plan = load_plan(ROOT / spec)
    emit_rust(plan, tmp_path / "crate")
    run(["cargo", "check", "--offline", "-q", "--lib", "--features", "c-api"], tmp_path / "crate",
        cargo_env(native_builds.target_dir))
    assert f"pub extern \"C\" fn {c_symbol_prefix(plan)}_create()" in (tmp_path / "crate" / "src" / "c_api.rs").read_text()
