"""The generated Rust and C++ APIs as their users expect them: a default-constructed record holds
the schema's declared defaults, results that matter cannot be dropped silently (`#[must_use]`,
`[[nodiscard]]`, and the C API's guarded attribute that a C++14 or C program still compiles),
and decoders turn bad bytes into errors, never panics."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from nativetools import ROOT, NativeBuilds, cargo_env, run

from catopt_dsl.backends.cpp import emit_cpp
from catopt_dsl.backends.rust import emit_rust, render_rust
from catopt_dsl.compile import load_plan

SPEC = ROOT / "tests" / "cases" / "native" / "schema_defaults.cat"

pytestmark = pytest.mark.slow

DEFAULTS_RS = """use catopt_schema_defaults::schemas::{ReportV1, ReportV2};

#[test]
fn default_record_holds_the_schema_defaults() {
    let r = ReportV2::default();
    // declared defaults
    assert_eq!(r.weight, 2.5);
    assert_eq!(r.tier, -3);
    assert!(r.urgent);
    assert_eq!(r.scale, vec![1.5, -0.25]);
    assert_eq!(r.flags, vec![false, true, true]);
    // no default declared: zeros of the field's shape, so the record encodes as it is
    assert_eq!(r.load, 0.0);
    assert_eq!(r.slots, vec![0, 0]);
    let bytes = r.encode().expect("a default record encodes");
    assert_eq!(ReportV2::decode(&bytes).expect("and decodes"), r);
    // a v1 record read as v2 takes the same defaults as a default-constructed one
    let old = ReportV1 { load: 1.25, slots: vec![4, 5] }.encode().expect("v1 encodes");
    let read = ReportV2::decode(&old).expect("v1 bytes decode as v2");
    assert_eq!(ReportV2 { load: 1.25, slots: vec![4, 5], ..ReportV2::default() }, read);
    assert_eq!(ReportV1::default(), ReportV1 { load: 0.0, slots: vec![0, 0] });
}

#[test]
fn decoders_return_errors_with_display_and_source() {
    let bytes = ReportV2::default().encode().expect("encodes");
    for cut in 0..bytes.len() {
        let err = ReportV2::decode(&bytes[..cut]).expect_err("a truncated record is an Err");
        let as_error: &dyn std::error::Error = &err;
        assert!(!as_error.to_string().is_empty());
    }
    let missing = catopt_schema_defaults::runtime::local_solvers(
        &catopt_schema_defaults::plans::plan(), Vec::new(), Vec::new()
    ).err().expect("no QP data given: every object is missing");
    let as_error: &dyn std::error::Error = &missing;
    assert!(as_error.to_string().contains("`a`"), "{}", as_error);
}
"""

IGNORED_RS = """#![deny(unused_must_use)]
fn main() {
    catopt_schema_defaults::plans::plan();
    catopt_schema_defaults::problems::A::load();
    catopt_schema_defaults::schemas::ReportV2::decode(&[]);
}
"""

DEFAULTS_CPP = """#include <cstdio>
#include "schema_defaults.hpp"
namespace s = ::catopt_schema_defaults::schemas;
int main() {
    const s::ReportV2 r;
    const bool ok = r.weight == 2.5 && r.tier == -3 && r.urgent && r.scale == std::vector<double>{1.5, -0.25}
        && r.flags == std::vector<bool>{false, true, true} && r.load == 0.0 && r.slots == std::vector<std::int64_t>{0, 0};
    if (!ok) { std::printf("defaults wrong\\n"); return 1; }
    if (!(s::ReportV2::decode(r.encode()) == r)) { std::printf("round trip\\n"); return 1; }
    s::ReportV1 old;
    old.load = 1.25;
    old.slots = {4, 5};
    s::ReportV2 want;
    want.load = 1.25;
    want.slots = {4, 5};
    if (!(s::ReportV2::decode(old.encode()) == want)) { std::printf("v1 as v2\\n"); return 1; }
    std::printf("CATOPT DEFAULTS ok\\n");
    return 0;
}
"""

IGNORED_CPP = """#include "schema_defaults.hpp"
int main() {
    ::catopt_schema_defaults::plans::plan();
    ::catopt_schema_defaults::problems::A::load();
    ::catopt_schema_defaults::schemas::ReportV2::decode(::catopt_schema_defaults::rt::Bytes{});
    return 0;
}
"""

IGNORED_C = """#include "schema_defaults_c.h"
int main(void) {
    catopt_schema_defaults_solver* s = catopt_schema_defaults_create();
    catopt_schema_defaults_solve(s);
    catopt_schema_defaults_free(s);
    return 0;
}
"""

USED_C = """#include "schema_defaults_c.h"
int main(void) {
    catopt_schema_defaults_solver* s = catopt_schema_defaults_create();
    int status = s == 0 ? -1 : catopt_schema_defaults_solve(s);
    catopt_schema_defaults_free(s);
    return status;
}
"""


def _fails(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a build that must fail; its diagnostics."""
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, f"`{' '.join(cmd)}` built, but should not have:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_rust_defaults_must_use_and_errors(tmp_path: Path, native_builds: NativeBuilds, need_rust: None) -> None:
    crate = tmp_path / "crate"
    emit_rust(load_plan(SPEC), crate)
    (crate / "tests" / "defaults.rs").write_text(DEFAULTS_RS)
    env = cargo_env(native_builds.target_dir)
    out = run(["cargo", "test", "--offline", "-q", "--test", "defaults"], crate, env)
    assert "2 passed" in out, out
    # dropping a result that matters is an error under `deny(unused_must_use)`: the plan and a
    # handle (types that are not must_use themselves) and a decoder, with its reason
    (crate / "examples").mkdir()
    (crate / "examples" / "ignored.rs").write_text(IGNORED_RS)
    err = _fails(["cargo", "build", "--offline", "-q", "--example", "ignored"], crate, env)
    assert "unused return value of `plan` that must be used" in err, err
    assert "unused return value of `A::load` that must be used" in err, err
    assert "a decoded record (or the reason the bytes are not one) is the only result" in err, err


def test_rust_decoders_have_no_panicking_calls() -> None:
    """Decoders reach values through `?` and `Option` combinators only (the scalar read included)."""
    sources, _ = render_rust(load_plan(SPEC))
    schemas = sources["src/schemas.rs"]
    body = schemas[schemas.index("pub fn decode") :]
    for bad in (".unwrap()", ".expect(", "panic!", "[0]", "scalar("):
        assert bad not in body, bad


@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("gcc") is None, reason="no g++/gcc")
def test_cpp_defaults_nodiscard_and_the_c_header(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    emit_cpp(load_plan(SPEC), lib)
    (tmp_path / "defaults.cpp").write_text(DEFAULTS_CPP)
    sources = [str(p) for p in sorted(lib.glob("*.cpp")) if not p.name.startswith("solve_")]
    exe = tmp_path / "defaults"
    run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(lib), "-o", str(exe),
         str(tmp_path / "defaults.cpp"), *sources], tmp_path)
    assert "CATOPT DEFAULTS ok" in run([str(exe)], tmp_path)
    # [[nodiscard]]: ignoring the plan, a handle or a decoded record is an error under -Werror
    (tmp_path / "ignored.cpp").write_text(IGNORED_CPP)
    err = _fails(["g++", "-std=c++17", "-Werror", "-fsyntax-only", "-I", str(lib), str(tmp_path / "ignored.cpp")], tmp_path)
    assert err.count("nodiscard") >= 3, err
    # the C API's attribute: [[nodiscard]] in C++17, the GNU attribute in C++14 and C11, and a
    # program that reads its results still compiles in each mode
    (tmp_path / "ignored.c").write_text(IGNORED_C)
    (tmp_path / "used.c").write_text(USED_C)
    modes = [["g++", "-x", "c++", "-std=c++17"], ["g++", "-x", "c++", "-std=c++14"], ["gcc", "-x", "c", "-std=c11"]]
    for mode in modes:
        # compiled, not -fsyntax-only: GCC reports warn_unused_result only while generating code
        strict = [*mode, "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", "-o", os.devnull, "-I", str(lib)]
        err = _fails([*strict, str(tmp_path / "ignored.c")], tmp_path)
        assert "catopt_schema_defaults_solve" in err and ("nodiscard" in err or "warn_unused_result" in err), err
        run([*strict, str(tmp_path / "used.c")], tmp_path)
