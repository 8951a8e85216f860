"""Helpers for the tests that build and run generated Rust and C++ (tests/native, tests/conformance).

Everything is built in temporary folders (never inside ``generated/``); all Rust crates of a
session share one ``CARGO_TARGET_DIR``. Extra test programs written here reach the generated
code only through its public API and through names from the same naming pass as the backends.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
import crc32c
import numpy as np

from catopt_dsl.backends import cpp as cpp_backend
from catopt_dsl.backends import rust as rust_backend
from catopt_dsl.backends.cpp import CPP_RESERVED_MEMBERS
from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver.coordinator import Coordinator
from catopt_dsl.solver.layout import build_layout
from catopt_dsl.ir.analysis import quadratic_form
from catopt_dsl.solver.result import SolveOptions
from catopt_dsl.solver.worker import LocalReport

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
# The Python reference with a closed-form quadratic local solver
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalQuadratic:
    """``f(x) = 1/2 x'Px + q'x + r`` of one object (its IR objective; constraints ignored)."""

    P: np.ndarray
    q: np.ndarray
    r: float


def local_quadratics(plan: IRPlan) -> list[LocalQuadratic]:
    out = []
    for o in plan.objects:
        params = {p.name: np.asarray(p.value, dtype=np.float64) for p in o.params}
        quad = quadratic_form(o.objective, o.vars, params)
        out.append(
            LocalQuadratic(np.asarray(quad.P, dtype=np.float64), np.asarray(quad.q, dtype=np.float64), float(quad.r))
        )
    return out


@dataclass(frozen=True)
class RunResult:
    status: str
    objective: float | None
    iterations: int


def python_reference(plan: IRPlan, max_iter: int = 10000) -> RunResult:
    """Drive ``catopt_dsl.solver``'s Coordinator with the closed-form prox of each quadratic:
    ``x = (P + rho M'M)^{-1} (rho M'd - q)``, the same local solver the native programs use."""
    layout = build_layout(plan)
    opts = SolveOptions(max_iter=max_iter)
    coordinator = Coordinator(layout, opts)
    quads = local_quadratics(plan)
    bc = coordinator.first_iterate()
    for k in range(1, max_iter + 1):
        contributions = {}
        for o, quad in zip(layout.objects, quads):
            d = bc.centres[o.obj.name]
            K = quad.P + bc.rho * (o.M.T @ o.M)
            x = np.linalg.solve(K, bc.rho * (o.M.T @ d) - quad.q)
            a = o.M @ x + o.e
            f = float(0.5 * x @ (quad.P @ x) + quad.q @ x + quad.r)
            contributions[o.obj.name] = LocalReport(o.obj.name, a, f)
        bc = coordinator.update(contributions)
        if bc.converged:
            return RunResult("optimal", bc.objective, k)
    return RunResult("max_iterations", bc.objective, max_iter)


def _rust_f64s(values: np.ndarray) -> str:
    return "vec![" + ", ".join(f"f64::from_bits(0x{f64_hex(v)})" for v in np.asarray(values).reshape(-1)) + "]"


def _cpp_f64s(ns: str, values: np.ndarray) -> str:
    return (
        "std::vector<double>{"
        + ", ".join(f"::{ns}::rt::f64_from_bits(0x{f64_hex(v)}ULL)" for v in np.asarray(values).reshape(-1))
        + "}"
    )


def param_crcs(plan: IRPlan) -> dict[tuple[str, str], int]:
    """CRC32C of every param's little-endian bytes, per (object, param), for every unit member."""
    out = {}
    for u in rust_backend.native_units(plan):
        for m in u.members:
            for p in m.params:
                kind = {"float": "f64", "int": "i64", "bool": "bool"}[p.dtype]
                out[(m.name, p.name)] = crc32c.crc32c(rust_backend.le_bytes(np.asarray(p.value), kind))
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
    for u in rust_backend.native_units(plan):
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
        quads = local_quadratics(plan)
        lines += [
            "#[test]",
            "fn reference_run() {",
            f"    let plan = {crate}::plans::plan();",
            "    let mut solvers: Vec<Box<dyn rt::LocalSolver>> = Vec::new();",
        ]
        for i, quad in enumerate(quads):
            lines.append(
                f"    solvers.push(Box::new(rt::QuadraticSolver::new(&plan.objects[{i}], {_rust_f64s(quad.P)}, "
                f"{_rust_f64s(quad.q)}, f64::from_bits(0x{f64_hex(quad.r)}))));"
            )
        lines += [
            "    let mut c = rt::Coordinator::new(plan.clone(), rt::Options::default());",
            "    let r = c.solve(&mut solvers);",
            '    println!("CATOPT REF {} {:016x} {}", r.status.as_str(), r.objective.unwrap_or(f64::NAN).to_bits(), r.iterations);',
            "}",
            # A local solver that turns bad on its third call: NaN, then +Inf, in the last object.
            "struct Poisoned { inner: Box<dyn rt::LocalSolver>, calls: usize, value: f64 }",
            "impl rt::LocalSolver for Poisoned {",
            "    fn prox(&mut self, centre: &[f64], rho: f64) -> Result<Vec<f64>, rt::StepFailure> {",
            "        self.calls += 1;",
            "        let mut x = self.inner.prox(centre, rho)?;",
            "        if self.calls >= 3 { x[0] = self.value; }",
            "        Ok(x)",
            "    }",
            "    fn objective(&self, x: &[f64]) -> f64 { self.inner.objective(x) }",
            "}",
            "#[test]",
            "fn non_finite_local_solutions_fail_the_solve() {",
            "    for value in [f64::NAN, f64::INFINITY] {",
            f"        let plan = {crate}::plans::plan();",
            "        let mut solvers: Vec<Box<dyn rt::LocalSolver>> = Vec::new();",
        ]
        last = len(quads) - 1
        for i, quad in enumerate(quads):
            make = (
                f"Box::new(rt::QuadraticSolver::new(&plan.objects[{i}], {_rust_f64s(quad.P)}, "
                f"{_rust_f64s(quad.q)}, f64::from_bits(0x{f64_hex(quad.r)})))"
            )
            if i == last:
                make = f"Box::new(Poisoned {{ inner: {make}, calls: 0, value }})"
            lines.append(f"        solvers.push({make});")
        lines += [
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
    for u in rust_backend.native_units(plan):
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
        quads = local_quadratics(plan)
        lines += [
            f"    const rt::PlanSpec plan = ::{ns}::plans::plan();",
            "    std::vector<std::shared_ptr<rt::LocalSolver>> solvers;",
        ]
        for i, quad in enumerate(quads):
            lines.append(
                f"    solvers.push_back(std::make_shared<rt::QuadraticSolver>(plan.objects[{i}], {_cpp_f64s(ns, quad.P)}, "
                f"{_cpp_f64s(ns, quad.q)}, rt::f64_from_bits(0x{f64_hex(quad.r)}ULL)));"
            )
        lines += [
            "    rt::Coordinator c(plan, rt::Options{});",
            "    const rt::SolveResult r = c.solve(solvers);",
            '    std::printf("CATOPT REF %s %016llx %zu\\n", rt::status_name(r.status), '
            "static_cast<unsigned long long>(rt::f64_to_bits(r.has_objective ? r.objective : 0.0)), r.iterations);",
            "    for (double value : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {",
            "        auto poisoned = solvers;",
            "        poisoned.back() = std::make_shared<Poisoned>(solvers.back(), value);",
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
            "struct Poisoned : public rt::LocalSolver {",
            "    Poisoned(std::shared_ptr<rt::LocalSolver> inner, double value) : inner_(std::move(inner)), value_(value) {}",
            "    std::vector<double> prox(const std::vector<double>& centre, double rho) override {",
            "        auto x = inner_->prox(centre, rho);",
            "        if (++calls_ >= 3) x[0] = value_;",
            "        return x;",
            "    }",
            "    double objective(const std::vector<double>& x) const override { return inner_->objective(x); }",
            "    std::shared_ptr<rt::LocalSolver> inner_;",
            "    double value_;",
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


def build_rust(plan: IRPlan, dest: Path, target_dir: Path, extra: dict[str, str]) -> str:
    """Emit the crate into ``dest``, add ``extra`` files, ``cargo build`` + ``cargo test``; stdout."""
    rust_backend.emit_rust(plan, dest)
    for rel, text in extra.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text, encoding="utf-8")
    env = cargo_env(target_dir)
    run(["cargo", "build", "--offline", "-q"], dest, env)
    return run(["cargo", "test", "--offline", "-q", "--", "--nocapture", "--test-threads=1"], dest, env)


def build_cpp(plan: IRPlan, dest: Path, extra_program: str | None) -> str:
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


def parse_ref(output: str) -> RunResult:
    rows = parse_lines(output, "REF")
    assert len(rows) == 1, output[-3000:]
    status, bits, iters = rows[0]
    value = struct.unpack("<d", struct.pack("<Q", int(bits, 16)))[0]
    return RunResult(status, value, int(iters))


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
#: plans compared with the Python reference (consensus, sharing, both, and several couplings per
#: Limit and per Limit family member)
REFERENCE_SPECS = [
    "examples/consensus_lasso.cat",
    "examples/gpu_fleet.cat",
    "examples/mixed_plan.cat",
    "tests/plans/cases/two_couplings_both_active.cat",
    "tests/plans/cases/limit_family_two_constraints.cat",
]


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
                    self._out[key] = build_rust(
                        plan, dest, self.target_dir, {"tests/native_extra.rs": rust_extra_test(plan, reference)}
                    )
                else:
                    self._out[key] = build_cpp(plan, dest, cpp_extra_program(plan, reference))
            except AssertionError as exc:
                self._out[key] = exc
        result = self._out[key]
        if isinstance(result, AssertionError):
            raise result
        return result
