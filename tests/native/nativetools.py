"""Helpers for the tests that build and run generated Rust and C++ (tests/native, tests/conformance).

Everything is built in temporary folders (never inside ``generated/``); all Rust crates of a
session share one ``CARGO_TARGET_DIR``. Extra test programs written here reach the generated
code only through its public API and through names from the same naming pass as the backends.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import crc32c
import numpy as np

from catopt_dsl.backends import cpp as cpp_backend
from catopt_dsl.backends import native
from catopt_dsl.backends import rust as rust_backend
from catopt_dsl.backends.cpp import CPP_RESERVED_MEMBERS
from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan

ROOT = Path(__file__).resolve().parents[2]

TOOLS = {"cargo": shutil.which("cargo"), "g++": shutil.which("g++"), "cmake": shutil.which("cmake")}

STRICT_CXX = "-std=c++17 -Wall -Wextra -Werror -pedantic"


def missing_tools(*names: str) -> list[str]:
    return [n for n in names if TOOLS.get(n) is None]


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run ``cmd``; on failure raise AssertionError with its output (the test's message)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"`{' '.join(cmd)}` failed with {proc.returncode} in {cwd}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc.stdout + proc.stderr


def f64_hex(value: float) -> str:
    return f"{struct.unpack('<Q', struct.pack('<d', float(value)))[0]:016x}"


# ---------------------------------------------------------------------------------------------
# The reference: the plan's own solve (constraints and all)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    status: str
    objective: float | None
    iterations: int | None


def plan_reference(plan: IRPlan, centralized: bool) -> RunResult:
    """``catoptc solve`` (in-process ADMM) or ``catoptc solve --centralized`` on the real plan."""
    from catopt_dsl.solver import solve, solve_centralized

    r = solve_centralized(plan) if centralized else solve(plan)
    return RunResult(r.status, r.objective, r.iterations)


def parse_solve(output: str) -> dict:
    """The JSON object the generated solve program printed (tagged ``CATOPT SOLVE``)."""
    rows = _tagged(output, "SOLVE")
    assert len(rows) == 1, output[-3000:]
    return json.loads(rows[0])


def param_crcs(plan: IRPlan) -> dict[tuple[str, str], int]:
    """CRC32C of every param's little-endian bytes, per (object, param), for every unit member."""
    out = {}
    for u in native.native_units(plan):
        for m in u.members:
            for p in m.params:
                kind = {"float": "f64", "int": "i64", "bool": "bool"}[p.dtype]
                out[(m.name, p.name)] = crc32c.crc32c(native.le_bytes(np.asarray(p.value), kind))
    return out


# ---------------------------------------------------------------------------------------------
# Extra native programs
# ---------------------------------------------------------------------------------------------


def rust_extra_test(plan: IRPlan, reference: bool) -> str:
    """``tests/native_extra.rs``: prints ``CATOPT PARAM`` lines and (optionally) ``CATOPT REF``."""
    crate = rust_backend.crate_name(plan)
    namer = rust_backend.NAMER
    lines = [
        "#![allow(dead_code)]",
        f"use {crate}::runtime as rt;",
        "fn crc_f64(v: &[f64]) -> u32 { rt::crc32c(&v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect::<Vec<u8>>()) }",
        "fn crc_i64(v: &[i64]) -> u32 { rt::crc32c(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()) }",
        "fn crc_bool(v: &[bool]) -> u32 { rt::crc32c(&v.iter().map(|&b| u8::from(b)).collect::<Vec<u8>>()) }",
        "#[test]",
        "fn params_bit_exact() {",
    ]
    kinds = {"float": "f64", "int": "i64", "bool": "bool"}
    for u in native.native_units(plan):
        ty = namer.type_name(u.name)
        for m in u.members:
            if not m.params:
                continue  # nothing to check, and an unused handle would be a warning
            getter = (
                f"{crate}::problems::{ty}::member({m.index}).unwrap()"
                if u.family
                else f"{crate}::problems::{ty}::load()"
            )
            lines.append("    {")
            lines.append(f"        let h = {getter};")
            for p in m.params:
                field = namer.field_name(p.name)
                arg = f"&[h.{field}]" if not p.shape else f"&h.{field}"
                label = rust_backend.rust_str(f"{m.name} {p.name}")
                lines.append(f'        println!("CATOPT PARAM {{}} {{}}", {label}, crc_{kinds[p.dtype]}({arg}));')
            lines.append("    }")
    lines.append("}")
    if reference:
        lines += [
            # A local solver that turns bad on its third call: NaN, then +Inf, in the last object.
            # (bad_objective: a finite x, but a NaN objective value from the start.)
            "struct Poisoned { inner: Box<dyn rt::LocalSolver>, calls: usize, value: f64, bad_objective: bool }",
            "impl rt::LocalSolver for Poisoned {",
            "    fn prox(&mut self, centre: &[f64], rho: f64) -> Result<Vec<f64>, rt::StepFailure> {",
            "        self.calls += 1;",
            "        let mut x = self.inner.prox(centre, rho)?;",
            "        if self.calls >= 3 && !self.bad_objective { x[0] = self.value; }",
            "        Ok(x)",
            "    }",
            "    fn objective(&self, x: &[f64]) -> f64 { if self.bad_objective { f64::NAN } else { self.inner.objective(x) } }",
            "}",
            "#[test]",
            "fn non_finite_local_solutions_fail_the_solve() {",
            "    for (value, bad_objective) in [(f64::NAN, false), (f64::INFINITY, false), (0.0, true)] {",
            f"        let plan = {crate}::plans::plan();",
            f"        let mut solvers = rt::local_solvers(&plan, {crate}::plans::local(), Vec::new()).unwrap();",
            "        let last = solvers.pop().unwrap();",
            "        solvers.push(Box::new(Poisoned { inner: last, calls: 0, value, bad_objective }));",
            "        let mut c = rt::Coordinator::new(plan.clone(), rt::Options::default());",
            "        let r = c.solve(&mut solvers);",
            '        println!("CATOPT NONFINITE {} {} {}", r.status.as_str(), r.iterations, r.message);',
            "    }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def cpp_extra_program(plan: IRPlan, reference: bool) -> str:
    """``tests/native_extra.cpp``: the same output as :func:`rust_extra_test`."""
    ns = cpp_backend.namespace(plan)
    namer = cpp_backend.NAMER
    reserved = CPP_RESERVED_MEMBERS["problem"]
    lines = [
        f'#include "{cpp_backend.file_stem(plan)}.hpp"',
        "#include <cstdio>",
        f"namespace rt = ::{ns}::rt;",
        "inline unsigned crc_f64(const std::vector<double>& v) { rt::Bytes b; for (double x : v) { auto u = rt::f64_to_bits(x); for (int k = 0; k < 8; ++k) b.push_back(static_cast<std::uint8_t>(u >> (8 * k))); } return rt::crc32c(b.data(), b.size()); }",
        "inline unsigned crc_i64(const std::vector<std::int64_t>& v) { rt::Bytes b; for (auto x : v) { auto u = static_cast<std::uint64_t>(x); for (int k = 0; k < 8; ++k) b.push_back(static_cast<std::uint8_t>(u >> (8 * k))); } return rt::crc32c(b.data(), b.size()); }",
        "inline unsigned crc_bool(const std::vector<bool>& v) { rt::Bytes b; for (bool x : v) b.push_back(x ? 1 : 0); return rt::crc32c(b.data(), b.size()); }",
        "int main() {",
    ]
    kinds = {"float": ("f64", "double"), "int": ("i64", "std::int64_t"), "bool": ("bool", "bool")}
    for u in native.native_units(plan):
        ty = namer.type_name(u.name)
        for m in u.members:
            if not m.params:
                continue  # nothing to check, and an unused handle would be a warning
            getter = (
                f"*::{ns}::problems::{ty}::member({cpp_backend.cpp_i64(m.index)})"
                if u.family
                else f"::{ns}::problems::{ty}::load()"
            )
            lines.append("    {")
            lines.append(f"        const auto h = {getter};")
            for p in m.params:
                field = namer.field_name(p.name, reserved)
                kind, ctype = kinds[p.dtype]
                arg = f"std::vector<{ctype}>{{h.{field}}}" if not p.shape else f"h.{field}"
                label = cpp_backend.cpp_str(f"{m.name} {p.name}")
                lines.append(f'        std::printf("CATOPT PARAM %s %u\\n", {label}, crc_{kind}({arg}));')
            lines.append("    }")
    if reference:
        lines += [
            f"    const rt::PlanSpec plan = ::{ns}::plans::plan();",
            "    const double nan = std::numeric_limits<double>::quiet_NaN();",
            "    for (const auto& [value, bad_objective] : {std::pair<double, bool>{nan, false}, {std::numeric_limits<double>::infinity(), false}, {0.0, true}}) {",
            "        auto poisoned = rt::local_solvers(plan, ::" + ns + "::plans::local());",
            "        poisoned.back() = std::make_shared<Poisoned>(poisoned.back(), value, bad_objective);",
            "        rt::Coordinator pc(plan, rt::Options{});",
            "        const rt::SolveResult pr = pc.solve(poisoned);",
            '        std::printf("CATOPT NONFINITE %s %zu %s\\n", rt::status_name(pr.status), pr.iterations, pr.message.c_str());',
            "    }",
        ]
    lines += ["    return 0;", "}"]
    if reference:
        # A local solver that turns bad on its third call (NaN, then +Inf) in the last object.
        poisoned = [
            "#include <limits>",
            "#include <utility>",
            "struct Poisoned : public rt::LocalSolver {",
            "    Poisoned(std::shared_ptr<rt::LocalSolver> inner, double value, bool bad_objective) : inner_(std::move(inner)), value_(value), bad_objective_(bad_objective) {}",
            "    std::vector<double> prox(const std::vector<double>& centre, double rho) override {",
            "        auto x = inner_->prox(centre, rho);",
            "        if (++calls_ >= 3 && !bad_objective_) x[0] = value_;",
            "        return x;",
            "    }",
            "    double objective(const std::vector<double>& x) const override { return bad_objective_ ? std::numeric_limits<double>::quiet_NaN() : inner_->objective(x); }",
            "    std::shared_ptr<rt::LocalSolver> inner_;",
            "    double value_;",
            "    bool bad_objective_;",
            "    int calls_ = 0;",
            "};",
        ]
        at = lines.index("int main() {")
        lines[at:at] = poisoned
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def cargo_env(target_dir: Path) -> dict[str, str]:
    return {
        "CARGO_TARGET_DIR": str(target_dir),
        "RUSTFLAGS": "-Dwarnings",
        "CARGO_NET_OFFLINE": "true",
        "CARGO_TERM_COLOR": "never",
    }


def build_rust(plan: IRPlan, dest: Path, target_dir: Path, extra: dict[str, str], solve: bool = False) -> str:
    """Emit the crate into ``dest``, add ``extra`` files, ``cargo build`` + ``cargo test``; stdout."""
    rust_backend.emit_rust(plan, dest)
    for rel, text in extra.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text, encoding="utf-8")
    env = cargo_env(target_dir)
    run(["cargo", "build", "--offline", "-q"], dest, env)
    out = run(["cargo", "test", "--offline", "-q", "--", "--nocapture", "--test-threads=1"], dest, env)
    if solve:
        out += "\nCATOPT SOLVE " + solve_output(["cargo", "run", "--offline", "-q", "--bin", "solve"], dest, env)
    return out


def solve_output(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """The one JSON line a generated solve program prints (exit 0 or 1: any status)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise AssertionError(f"`{' '.join(cmd)}` failed with {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


def build_cpp(plan: IRPlan, dest: Path, extra_program: str | None, solve: bool = False) -> str:
    """Emit the project into ``dest``; configure with the strict warning flags, build, ctest, and
    run the extra program (added as a target of the copy). Returns its output."""
    cpp_backend.emit_cpp(plan, dest)
    if extra_program is not None:
        (dest / "tests" / "native_extra.cpp").write_text(extra_program, encoding="utf-8")
        with (dest / "CMakeLists.txt").open("a", encoding="utf-8") as fh:
            fh.write(
                f"\nadd_executable(native_extra tests/native_extra.cpp)\ntarget_link_libraries(native_extra PRIVATE {cpp_backend.namespace(plan)})\n"
            )
    build = dest / "build"
    run(
        [
            "cmake",
            "-S",
            ".",
            "-B",
            str(build),
            f"-DCMAKE_CXX_FLAGS={STRICT_CXX.replace('-std=c++17 ', '')}",
            "-DCMAKE_BUILD_TYPE=",
        ],
        dest,
    )
    run(["cmake", "--build", str(build), "-j", "2"], dest)
    out = run(["ctest", "--test-dir", str(build), "--output-on-failure"], dest)
    if extra_program is not None:
        out += run([str(build / "native_extra")], dest)
    if solve:
        out += "\nCATOPT SOLVE " + solve_output([str(build / f"solve_{cpp_backend.file_stem(plan)}")], dest)
    return out


def _tagged(output: str, tag: str) -> list[str]:
    """The text after ``CATOPT <tag> `` on each line that has it (cargo's progress dots may
    precede it on the same line)."""
    marker = f"CATOPT {tag} "
    return [line[line.index(marker) + len(marker) :] for line in output.splitlines() if marker in line]


def parse_lines(output: str, tag: str) -> list[list[str]]:
    return [rest.split() for rest in _tagged(output, tag)]


def parse_params(output: str) -> dict[tuple[str, str], int]:
    out = {}
    for rest in _tagged(output, "PARAM"):
        obj, param, crc = rest.rsplit(" ", 2)
        out[(obj, param)] = int(crc)
    return out


def parse_nonfinite(output: str) -> list[tuple[str, int, str]]:
    """``(status, iterations, message)`` of each poisoned run (NaN, then Inf)."""
    out = []
    for rest in _tagged(output, "NONFINITE"):
        status, iters, message = rest.split(" ", 2)
        out.append((status, int(iters), message))
    return out


# ---------------------------------------------------------------------------------------------
# The session's builds (one per spec and language; fixtures in conftest.py)
# ---------------------------------------------------------------------------------------------

#: specs built natively: every example, the keyword spec, and the naming edge cases (identifiers
#: that start with a digit, generated-helper names, int64 family ends, a u32-max schema version)
#: and a plan whose couplings are infeasible (its generated tests must not expect `optimal`)
NATIVE_SPECS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.cat")) + [
    "tests/cases/keywords/keywords.cat",
    "tests/cases/naming/edges.cat",
    "tests/cases/naming/infeasible_coupling.cat",
]
#: plans whose native solve (the generated QP solvers, `solve` program) is compared with
#: `catoptc solve` and `catoptc solve --centralized` on the real plan, constraints and all:
#: consensus, sharing, both, several couplings per Limit and per Limit family member, local
#: equality rows and active general inequalities, and a local QP with no point
REFERENCE_SPECS = [
    "examples/consensus_lasso.cat",
    "examples/gpu_fleet.cat",
    "examples/mixed_plan.cat",
    "examples/sites_200.cat",
    "tests/cases/native/qp_active.cat",
    "tests/cases/native/qp_infeasible.cat",
    "tests/plans/cases/two_couplings_both_active.cat",
    "tests/plans/cases/limit_family_two_constraints.cat",
    "tests/plans/cases/local_equalities_and_coupling.cat",
]
#: REFERENCE_SPECS whose local solvers are poisoned in the non-finite test (its last object is a QP)
POISON_SPECS = ["examples/gpu_fleet.cat"]


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
            reference = spec in POISON_SPECS
            solve = spec in REFERENCE_SPECS
            dest = self.root / lang / Path(spec).stem
            try:
                if lang == "rust":
                    self._out[key] = build_rust(
                        plan, dest, self.target_dir, {"tests/native_extra.rs": rust_extra_test(plan, reference)}, solve
                    )
                else:
                    self._out[key] = build_cpp(plan, dest, cpp_extra_program(plan, reference), solve)
            except AssertionError as exc:
                self._out[key] = exc
        result = self._out[key]
        if isinstance(result, AssertionError):
            raise result
        return result
