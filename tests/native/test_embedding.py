"""Embedding the generated code in a user's project (issue acceptance 3): a Cargo workspace whose
member depends on the generated crate, and CMake projects that `add_subdirectory` the generated
library through its `catopt::<spec>` ALIAS in C++14 (the C API) and C++17 (the C++ API) mode --
each built and run, solving the plan natively. The generated tests are built only when asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nativetools import ROOT, STRICT_CXX, cargo_env, run

from catopt_dsl.backends.cpp import emit_cpp
from catopt_dsl.backends.rust import emit_rust
from catopt_dsl.compile import load_plan

SPEC = ROOT / "tests" / "cases" / "native" / "qp_active.cat"

MAIN_RS = """use catopt_qp_active::{plans, runtime as rt};
fn main() {
    let plan = plans::plan();
    let mut solvers = rt::local_solvers(&plan, plans::local(), Vec::new()).expect("QPs");
    let solution = rt::solve_plan(plan.clone(), &mut solvers, rt::Options::default());
    println!("{}", solution.to_json(&plan, &plans::report()));
}
"""

MAIN_CPP17 = """#include <cstdio>
#include "qp_active.hpp"
namespace rt = ::catopt_qp_active::rt;
int main() {
    const rt::PlanSpec plan = ::catopt_qp_active::plans::plan();
    const auto solution = rt::solve_plan(plan, rt::local_solvers(plan, ::catopt_qp_active::plans::local()), rt::Options{});
    std::printf("%s\\n", solution.to_json(plan, ::catopt_qp_active::plans::report()).c_str());
    return 0;
}
"""

MAIN_C_API = """#include <cstdio>
#include "qp_active_c.h"
int main() {
    catopt_qp_active_solver* s = catopt_qp_active_create();
    if (s == nullptr || catopt_qp_active_set_param(s, "eps_abs", 1e-6) != 0) return 2;
    if (catopt_qp_active_set_param(s, "no_such_option", 1.0) == 0) return 3;
    const int status = catopt_qp_active_solve(s);
    std::printf("%s\\n", catopt_qp_active_result_json(s));
    catopt_qp_active_free(s);
    return status;
}
"""


def _check(output: str) -> None:
    data = json.loads(output.strip().splitlines()[-1])
    assert data["status"] == "optimal"
    assert abs(data["objective"] - 17.3472222) < 1e-3  # the centralised optimum (tests/test_admm_reference)


@pytest.mark.slow
def test_cargo_workspace_member_uses_the_generated_crate(tmp_path: Path, need_rust: None) -> None:
    emit_rust(load_plan(SPEC), tmp_path / "generated")
    # the generated crate is a workspace of its own (regeneration never touches the user's target/):
    # the user's workspace lists it in `exclude` and depends on it by path
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["app"]\nexclude = ["generated"]\nresolver = "2"\n')
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "Cargo.toml").write_text(
        '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n'
        '[dependencies]\ncatopt_qp_active = { path = "../generated" }\n'
    )
    (app / "src" / "main.rs").write_text(MAIN_RS)
    env = cargo_env(tmp_path / "target")
    _check(run(["cargo", "run", "--offline", "-q", "-p", "app"], tmp_path, env))


@pytest.mark.slow
@pytest.mark.parametrize(("standard", "main"), [("14", MAIN_C_API), ("17", MAIN_CPP17)])
def test_cmake_add_subdirectory_consumer(tmp_path: Path, standard: str, main: str, need_cpp: None) -> None:
    emit_cpp(load_plan(SPEC), tmp_path / "generated")
    (tmp_path / "main.cpp").write_text(main)
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.14)\nproject(app LANGUAGES CXX)\n"
        f"set(CMAKE_CXX_STANDARD {standard})\nset(CMAKE_CXX_STANDARD_REQUIRED ON)\n"
        "add_subdirectory(generated)\nadd_executable(app main.cpp)\n"
        "target_link_libraries(app PRIVATE catopt::qp_active)\n"
    )
    build = tmp_path / "build"
    flags = STRICT_CXX.replace("-std=c++17 ", "")
    run(["cmake", "-S", ".", "-B", str(build), f"-DCMAKE_CXX_FLAGS={flags}"], tmp_path)
    run(["cmake", "--build", str(build), "-j", "2"], tmp_path)
    out = run([str(build / "app")], tmp_path) if standard == "17" else _run_status(build / "app", tmp_path)
    _check(out)
    # embedded: neither the generated tests nor the solve program were built
    assert not (build / "generated" / "test_qp_active").exists()
    assert not (build / "generated" / "solve_qp_active").exists()


def _run_status(exe: Path, cwd: Path) -> str:
    import subprocess

    proc = subprocess.run([str(exe)], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr  # the status code of `optimal`
    return proc.stdout
