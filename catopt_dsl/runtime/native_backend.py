"""``--backend native``: the plan's generated C++ solver, compiled with the machine's compiler and
called through its C API (ctypes).

The C++ sources of the plan (``catopt_dsl.backends.cpp.render_cpp``: runtime, QP data, the C API
of ``<s>_c.h``) are compiled once into a shared library, cached by a content hash of the sources
and the compiler under ``$CATOPT_CACHE`` (default ``~/.cache/catoptc/native``), so a second solve
of the same plan costs no compile. Only plans whose objects are all QPs (the IR analysis) solve
natively; any other raises :class:`NativeUnsupported` naming the objects that are not.

The result is the same :class:`SolveResult` the other backends return, read from the JSON the
native solver prints (the ``catoptc solve --json`` contract): glued values, the same statuses. No
warm start, no progress callback, no prices (the native coordinator does not report them).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver.result import SolveOptions, SolveResult

__all__ = [
    "NATIVE_LANGS", "NativeBuildError", "NativeLibrary", "NativeUnsupported", "build_native", "cache_dir", "run_native",
    "solve_native",
]

#: the C API's status codes (rt::Status order)
STATUS_CODES = ("optimal", "infeasible", "unbounded", "max_iterations", "local_solver_failed")


class NativeUnsupported(ValueError):
    """The plan cannot be solved natively (an object whose x-update is not a QP)."""


class NativeBuildError(RuntimeError):
    """No C++ compiler, or it rejected the generated sources (a bug: the output says why)."""


#: the runtime's and the C API's optimisation: -O3, for its vectorised element-wise loops (the
#: settled QP step is a few short column updates per object). Portable: no -march, and no
#: reassociation (no -ffast-math), so sums add in source order and results are bit for bit those
#: of -O2. Part of the cache key, so a change of flags rebuilds.
OPT_FLAGS = ("-O3",)


def cache_dir() -> Path:
    """``$CATOPT_CACHE`` or ``~/.cache/catoptc/native``."""
    env = os.environ.get("CATOPT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "catoptc" / "native"


#: the languages a plan's native solver is generated in; both export the same C API
NATIVE_LANGS = ("cpp", "rust")


def _compiler() -> str:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    raise NativeBuildError("no C++ compiler found (set CXX, or install g++ or clang++)")


def _cargo() -> str:
    found = shutil.which(os.environ.get("CARGO") or "cargo")
    if not found:
        raise NativeBuildError("no Rust toolchain found (set CARGO, or install cargo: https://rustup.rs)")
    return found


@dataclass(frozen=True)
class NativeLibrary:
    """A compiled plan: the shared library, its symbol prefix, and what building it cost."""

    path: Path
    prefix: str
    compile_s: float  # 0.0 when it came from the cache
    cached: bool
    lang: str = "cpp"


def build_native(plan: IRPlan, lang: str = "cpp") -> NativeLibrary:
    """The plan's shared library in ``lang`` (``cpp``: the C++ library compiled with the machine's
    C++ compiler; ``rust``: the crate's ``c-api`` feature as a ``cdylib``), compiled or found in
    the cache. Both export the same C API under the same prefix."""
    from catopt_dsl.backends.native import c_api_prefix, needs_local_solver

    if lang not in NATIVE_LANGS:
        raise ValueError(f"unknown native language {lang!r}; choose from {', '.join(NATIVE_LANGS)}")
    missing = needs_local_solver(plan)
    if missing:
        names = ", ".join(f"`{n}`" for n in missing)
        raise NativeUnsupported(f"--backend native solves QPs only; not QPs: {names} (give each a LocalSolver in generated code)")
    if lang == "cpp":
        tool = _compiler()
        files = _cpp_files(plan)
    else:
        tool = _cargo()
        files = _rust_files(plan)
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout
    if lang == "rust":  # cargo's version does not name the compiler it drives
        rustc = shutil.which(os.environ.get("RUSTC") or "rustc")
        version += subprocess.run([rustc or "rustc", "--version"], capture_output=True, text=True, check=False).stdout
    digest = hashlib.sha256(lang.encode() + b"\0")
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + files[key] + b"\0")
    digest.update(version.encode())
    digest.update(" ".join(OPT_FLAGS).encode())
    folder = cache_dir() / digest.hexdigest()[:32]
    lib = folder / "libplan.so"
    prefix = c_api_prefix(plan)
    if lib.exists():
        return NativeLibrary(lib, prefix, 0.0, True, lang)
    start = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        for rel, data in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_bytes(data)
        built = _compile_cpp(tool, work, files) if lang == "cpp" else _compile_rust(tool, work, plan)
        folder.mkdir(exist_ok=True)
        os.replace(built, lib)  # atomic: a concurrent build of the same plan is harmless
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return NativeLibrary(lib, prefix, time.perf_counter() - start, False, lang)


def _cpp_files(plan: IRPlan) -> dict[str, bytes]:
    from catopt_dsl.backends.cpp import render_cpp

    return {
        k: v.encode()
        for k, v in render_cpp(plan).items()
        if not k.startswith(("tests/", "solve_")) and k != "CMakeLists.txt"
    }


def _rust_files(plan: IRPlan) -> dict[str, bytes]:
    from catopt_dsl.backends.rust import render_rust

    sources, blobs = render_rust(plan)
    files = {k: v.encode() for k, v in sources.items() if not k.startswith(("tests/", "src/bin/"))}
    files.update({f"src/data/{b.file_name}": b.data for b in blobs})
    return files


def _compile_cpp(cxx: str, work: Path, files: dict[str, bytes]) -> Path:
    # One process per translation unit, side by side. The plan's data file only builds tables
    # (thousands of initialisers for a big family): -O0 compiles it in seconds, not minutes,
    # and costs nothing at run time; the runtime and the C API get OPT_FLAGS.
    procs = []
    for rel in sorted(r for r in files if r.endswith(".cpp")):
        levels = ["-O0"] if rel.endswith("_plan.cpp") else list(OPT_FLAGS)
        obj = work / (rel + ".o")
        cmd = [cxx, *levels, "-std=c++17", "-fPIC", "-c", "-I", str(work), "-o", str(obj), str(work / rel)]
        procs.append((obj, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    errors = []
    for _, proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            errors.append(err)
    if not errors:
        link = subprocess.run([cxx, "-shared", "-o", str(work / "libplan.so"), *[str(o) for o, _ in procs]],
                              capture_output=True, text=True, check=False)
        if link.returncode != 0:
            errors.append(link.stderr)
    if errors:
        raise NativeBuildError("the C++ compiler rejected the generated sources:\n" + "\n".join(errors)[-4000:])
    return work / "libplan.so"


def _compile_rust(cargo: str, work: Path, plan: IRPlan) -> Path:
    from catopt_dsl.backends.rust import crate_name

    # The crate's own Cargo.toml leaves the crate type alone (a dependency stays an rlib); the
    # cdylib is asked for here. The target folder is the build's own: it goes with the build.
    env = dict(os.environ, CARGO_TARGET_DIR=str(work / "target"), CARGO_NET_OFFLINE="true", CARGO_TERM_COLOR="never")
    cmd = [cargo, "rustc", "--offline", "--quiet", "--release", "--lib", "--features", "c-api", "--crate-type", "cdylib"]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NativeBuildError("cargo rejected the generated crate:\n" + proc.stderr[-4000:])
    stem = crate_name(plan)
    for name in (f"lib{stem}.so", f"lib{stem}.dylib", f"{stem}.dll"):
        if (work / "target" / "release" / name).exists():
            return work / "target" / "release" / name
    raise NativeBuildError(f"cargo built no shared library lib{stem}.* under {work / 'target' / 'release'}")


def _load(lib: NativeLibrary) -> ctypes.CDLL:
    dll = ctypes.CDLL(str(lib.path))
    p = lib.prefix
    getattr(dll, f"{p}_create").restype = ctypes.c_void_p
    getattr(dll, f"{p}_create").argtypes = []
    getattr(dll, f"{p}_set_param").argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_double]
    getattr(dll, f"{p}_set_param").restype = ctypes.c_int
    getattr(dll, f"{p}_solve").argtypes = [ctypes.c_void_p]
    getattr(dll, f"{p}_solve").restype = ctypes.c_int
    for name in ("result_json", "error"):
        getattr(dll, f"{p}_{name}").argtypes = [ctypes.c_void_p]
        getattr(dll, f"{p}_{name}").restype = ctypes.c_char_p
    getattr(dll, f"{p}_free").argtypes = [ctypes.c_void_p]
    getattr(dll, f"{p}_free").restype = None
    return dll


def run_native(lib: NativeLibrary, options: SolveOptions | None = None) -> dict:
    """One solve through the C API: the ``solve --json`` object the native solver printed."""
    opts = options or SolveOptions()
    dll = _load(lib)
    p = lib.prefix
    handle = getattr(dll, f"{p}_create")()
    if not handle:
        raise MemoryError("the native solver could not be created")
    try:
        params = {
            "max_iter": opts.max_iter, "eps_abs": opts.eps_abs, "eps_rel": opts.eps_rel, "rho": opts.rho,
            "alpha": opts.alpha, "adaptive_rho": 1.0 if opts.adaptive_rho else 0.0,
        }
        for name, value in params.items():
            if getattr(dll, f"{p}_set_param")(handle, name.encode(), float(value)) != 0:
                raise ValueError(getattr(dll, f"{p}_error")(handle).decode())
        if getattr(dll, f"{p}_solve")(handle) < 0:
            raise NativeUnsupported(getattr(dll, f"{p}_error")(handle).decode())
        return dict(json.loads(getattr(dll, f"{p}_result_json")(handle).decode()))
    finally:
        getattr(dll, f"{p}_free")(handle)


def _arrays(table: dict | None, shapes: dict[str, dict[str, tuple[int, ...]]]) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, vars_ in (table or {}).items():
        out[name] = {
            v: np.asarray([np.nan if e is None else e for e in np.ravel(np.asarray(val, dtype=object))], dtype=np.float64).reshape(shapes[name][v])
            for v, val in vars_.items()
        }
    return out


def solve_native(plan: IRPlan, options: SolveOptions | None = None, lang: str = "cpp") -> SolveResult:
    """Solve ``plan`` with its generated solver in ``lang`` (``cpp`` or ``rust``; compiled on
    first use, then cached)."""
    start = time.perf_counter()
    lib = build_native(plan, lang)
    data = run_native(lib, options)
    shapes = {o.name: {v.name: tuple(v.shape) for v in o.vars} for o in plan.objects}
    shapes.update({b.name: {v.name: tuple(v.shape) for v in b.vars} for b in plan.shared})
    return SolveResult(
        status=str(data["status"]),
        objective=data["objective"],
        iterations=data["iterations"],
        primal_residual=data["primal_residual"],
        dual_residual=data["dual_residual"],
        solve_time_s=time.perf_counter() - start,
        objects=_arrays(data["objects"], shapes),
        shared=_arrays(data["shared"], shapes),
        message=str(data["message"]),
    )
