"""The hostile corpus: inputs a hostile spec author (or a careless one) can hand to catoptc.

Every case runs the real console entry point in a subprocess and must end with a located
diagnostic (``file:line:col: error[CODE]``) and exit 1, or a one-line usage error and exit 2 --
never exit 3 (an internal error), never a traceback, never a hang -- within ``TIME_LIMIT_S`` seconds
and ``MEMORY_LIMIT`` bytes of resident memory, both measured here: the child's peak RSS comes from
``wait4``, and an ``RLIMIT_AS`` of a few GiB is a safety net so a regression cannot take the
machine down.
These bounds are not benchmarks (benchmarks/ measures speed): they separate "bounded work" from
"minutes and gigabytes", which is what each case used to cost.

Small inputs are files under ``tests/cases/hostile/`` with an ``// expect: CODE at LINE:COL`` first
line; big or special ones (binary bytes, FIFOs, symlinks, sparse files, megabytes of tokens) are
built here in a temporary folder. The whole corpus is marked slow; ``FAST`` cases run in every
test run.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from catopt_dsl import limits

REPO = Path(__file__).resolve().parents[2]
HOSTILE_DIR = REPO / "tests" / "cases" / "hostile"
TIME_LIMIT_S = 10.0
MEMORY_LIMIT = 1 << 30  # peak resident set of the catoptc process
ADDRESS_LIMIT = 4 << 30  # RLIMIT_AS: a runaway allocation fails instead of swapping the machine

EXPECT_RE = re.compile(r"^//\s*expect:\s*(E\d{4})\s+at\s+(\d+):(\d+)\s*$")
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>E\d{4})\]", re.MULTILINE)

H = "catopt 1;\n"
OK = "LocalProblem a { var x: float; minimize square(x); }\n"


@dataclass(frozen=True)
class Case:
    """``make(folder)`` writes the inputs and returns the catoptc arguments (run in ``folder``)."""

    name: str
    make: Callable[[Path], list[str]]
    code: str | None  # expected first error code (exit 1); None: a usage error (exit 2)
    where: tuple[int, int] | None = None  # expected line:col of that error
    forbid: tuple[str, ...] = ()  # text that must not appear in the output


# `python -m catopt_dsl ARGS`, plus a report of the process's own peak resident set (VmHWM of its
# memory after exec; `wait4`'s ru_maxrss would include the parent's pages at fork time).
_WRAPPER = """
import atexit, os, runpy, sys
def _peak():
    try:
        with open('/proc/self/status') as fh:
            for line in fh:
                if line.startswith('VmHWM:'):
                    with open(os.environ['CATOPT_PEAK_FILE'], 'w') as out:
                        out.write(line.split()[1])
    except OSError:
        pass
atexit.register(_peak)
sys.argv = ['catoptc', *sys.argv[1:]]
runpy.run_module('catopt_dsl', run_name='__main__', alter_sys=True)
"""


@dataclass(frozen=True)
class Outcome:
    status: int
    output: str
    seconds: float
    max_rss: int


def run_catoptc(args: list[str], cwd: Path) -> Outcome:
    """Run ``python -m catopt_dsl ARGS`` with an address-space cap; measure time and peak RSS."""
    out_path = cwd / ".catoptc-output"

    peak_path = cwd / ".catoptc-peak"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "CATOPT_PEAK_FILE": str(peak_path),
    }
    env.pop("CATOPTC_TRACEBACK", None)
    with out_path.open("wb") as out:
        import subprocess

        t0 = time.perf_counter()
        # No preexec_fn: that forces fork(), and a forked child's peak RSS starts at this (large)
        # process's. The address-space cap is set on the child right after it is spawned, long
        # before the interpreter it starts has imported anything.
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, *args],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            resource.prlimit(proc.pid, resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))
        except (OSError, AttributeError):  # not Linux, or the child is already gone
            pass
        deadline = t0 + TIME_LIMIT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                pytest.fail(f"catoptc {' '.join(args)[:200]} still running after {TIME_LIMIT_S} s (killed)")
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    output = out_path.read_bytes().decode("utf-8", "replace")
    out_path.unlink()
    if peak_path.exists():
        peak = int(peak_path.read_text()) * 1024
        peak_path.unlink()
    else:  # no /proc: ru_maxrss, which also counts this process's pages at fork time (an over-estimate)
        peak = usage.ru_maxrss * 1024
    return Outcome(proc.returncode, output, seconds, peak)


def check_outcome(case: Case, got: Outcome) -> None:
    head = f"{case.name}: exit {got.status}, {got.seconds:.1f} s, {got.max_rss / 2**20:.0f} MiB\n{got.output[-3000:]}"
    assert got.status != 3, "internal error: " + head
    assert "Traceback" not in got.output, head
    assert got.seconds <= TIME_LIMIT_S, head
    assert got.max_rss <= MEMORY_LIMIT, head
    for text in case.forbid:
        assert text not in got.output, f"{text!r} leaked: " + head
    if case.code is None:
        assert got.status == 2, head
        assert re.search(r"^Error: \S", got.output, re.MULTILINE), head
        return
    assert got.status == 1, head
    found = LOCATED.search(got.output)
    assert found is not None, "no located diagnostic: " + head
    assert found.group("code") == case.code, head
    if case.where is not None:
        assert (int(found.group("line")), int(found.group("col"))) == case.where, head


# ---------------------------------------------------------------------------------------------
# Committed cases
# ---------------------------------------------------------------------------------------------


def _committed(path: Path) -> Case:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = EXPECT_RE.match(first)
    assert m, f"{path.name}: first line must be `// expect: CODE at LINE:COL`"

    def make(folder: Path) -> list[str]:
        (folder / path.name).write_bytes(path.read_bytes())
        return ["check", path.name]

    forbid = ("root:", "\x1b", "\x07") if ("passwd" in path.name or "escape" in path.name or "shadow" in path.name) else ()
    return Case(path.stem, make, m.group(1), (int(m.group(2)), int(m.group(3))), forbid)


COMMITTED = [_committed(p) for p in sorted(HOSTILE_DIR.glob("*.cat"))]


# ---------------------------------------------------------------------------------------------
# Generated cases
# ---------------------------------------------------------------------------------------------


def _spec(text: str | bytes, name: str = "t.cat") -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        data = text.encode("utf-8") if isinstance(text, str) else text
        (folder / name).write_bytes(data)
        return ["check", name]

    return make


def _with(setup: Callable[[Path], None], text: str, args: tuple[str, ...] = ()) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        setup(folder)
        (folder / "t.cat").write_text(text, encoding="utf-8")
        return ["check", *args, "t.cat"]

    return make


def _fifo(name: str) -> Callable[[Path], None]:
    return lambda folder: os.mkfifo(folder / name)


def _link(name: str, to: str) -> Callable[[Path], None]:
    return lambda folder: os.symlink(to, folder / name)


def _sparse(name: str, size: int) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        with (folder / name).open("wb") as fh:
            fh.truncate(size)

    return setup


def _outside(folder: Path) -> Path:
    out = folder.parent / (folder.name + "-outside")
    out.mkdir(exist_ok=True)
    (out / "secret.txt").write_text("root:TOPSECRET:0:0\n")
    (out / "lib.cat").write_text(H + OK.replace(" a ", " b "))
    np.save(out / "data.npy", np.ones(2))
    return out


def _npy(name: str, header: str, payload: bytes = b"\0" * 16) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        raw = header.encode("latin1")
        raw += b" " * ((64 - (10 + len(raw) + 1) % 64) % 64) + b"\n"
        (folder / name).write_bytes(b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw + payload)

    return setup


LOAD = 'LocalProblem a {{ param p: float[2] = load("{}"); var x: float; minimize square(x); }}\n'


def _imported_neighbour(folder: Path) -> None:
    out = _outside(folder)
    (folder / "lib.cat").write_text(H + 'LocalProblem b { param p: float[2] = load("data.npy"); var x: float; minimize square(x); }\n')
    os.symlink(out / "data.npy", folder / "data.npy")


def _compile_out(kind: str) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        (folder / "t.cat").write_text(H + OK)
        if kind == "file":
            (folder / "out").write_text("mine")
            out = "out"
        elif kind == "symlink":
            (folder / "real").mkdir()
            os.symlink(folder / "real", folder / "out")
            out = "out"
        else:
            out = "o" * 300
        return ["compile", "t.cat", "--target", "all", "--out", out]

    return make


def _solve(text: str) -> Callable[[Path], list[str]]:
    def make(folder: Path) -> list[str]:
        (folder / "t.cat").write_text(text, encoding="utf-8")
        return ["solve", "t.cat"]

    return make


def _deltas(folder: Path) -> list[str]:
    lines = [H, "LocalProblem a[i in 0..499] { param p: float = 1; var x: float[4]; minimize sum_squares(x - p); }\n"]
    lines += [f"PlanDelta d{k} {{ set a.p = {k}; }}\n" for k in range(200)]
    (folder / "t.cat").write_text("".join(lines))
    return ["compile", "t.cat", "--target", "all", "--out", "out"]


def _forward(n: int) -> str:
    return H + "LocalProblem a {\n" + "".join(f"  param p{i}: float = p{i + 1};\n" for i in range(n)) + f"  param p{n}: float = 1;\n  var x: float; minimize square(x - p0); }}\n"


GENERATED: list[Case] = [
    # -- bytes and encodings ------------------------------------------------------------------------
    Case("empty", _spec(b""), "E0006", (1, 1)),
    Case("random_bytes", _spec(bytes(np.random.default_rng(11).integers(0, 256, 4096, dtype=np.uint8))), "E0003", (2, 1)),
    Case("png_header", _spec(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "E0003", (3, 1)),
    Case("invalid_utf8", _spec(b"catopt 1;\nLocalProblem a\xff { }\n"), "E0003", (2, 15)),
    Case("two_boms", _spec("\ufeff\ufeff" + H + OK), "E0002", (1, 1)),
    Case("cr_only_lines", _spec("catopt 1;\rLocalProblem a {\r    var x: float;\r    minimize square(y);\r}\r"), "E0101", (4, 21)),
    Case("mixed_line_endings", _spec("catopt 1;\r\nLocalProblem a {\r    var x: float;\n    minimize square(y);\r\n}\n"), "E0101", (4, 21)),
    # -- sizes the parser must refuse while it runs --------------------------------------------------
    Case("sum_chain_4mb", _spec(H + "LocalProblem a { var x: float; minimize " + "+".join(["x"] * 2_000_000) + "; }\n"), "E0004", (2, 552)),
    Case("unary_signs_4mb", _spec(H + "LocalProblem a { var x: float; minimize " + "- " * 2_000_000 + "x; }\n"), "E0004", (2, 551)),
    Case("parens_10k", _spec(H + "LocalProblem a { var x: float; minimize " + "(" * 10_000 + "x" + ")" * 10_000 + "; }\n"), "E0004", (2, 168)),
    Case("brackets_unclosed", _spec(H + "LocalProblem a { param p: float = " + "[" * 5_000 + "; }\n"), "E0004", (2, 162)),
    Case("block_comment_15mb", _spec(H + "/*" + "x" * 15_000_000 + "*/\nLocalProblem a { var x: float; minimize square(y); }\n"), "E0101", (3, 48)),
    Case("block_comment_unclosed_15mb", _spec(H + "/*" + "x" * 15_000_000), "E0002", (2, 1)),
    Case("string_of_escapes", _spec(H + 'import "' + "\\a" * 3_000_000 + '";\n'), "E0007", (2, 8)),
    Case("name_16m_chars", _spec(H + "LocalProblem " + "n" * 16_000_000 + " {}\n"), "E0007", (2, 14)),
    # (MAX_TOKENS itself is tested in-process in test_limits.py: reaching it takes a million tokens
    # of parsing, bounded but slower than this corpus's per-case limit on a busy machine.)
    Case("colimit_names_500k", _spec(H + "Colimit c of " + ",".join(["s"] * 500_000) + ";\n"), "E0007", (2, 13 + 2 * limits.MAX_LIST_ELEMENTS)),
    Case("array_literal_300k", _spec(H + "LocalProblem a { param p: float[300000] = [" + ",".join(["1"] * 300_000) + "]; }\n"), "E0007", (2, 43 + 2 * limits.MAX_LIST_ELEMENTS)),
    Case("file_over_16mib", _spec(H + ("// " + "x" * 1021 + "\n") * (17 * 1024)), "E0005", (1, 1)),
    # -- work that used to grow faster than the input --------------------------------------------------
    Case("forward_references_3000", _spec(_forward(3000)), "E0101", (3, 21)),
    Case("unknown_functions_3000", _spec(H + "LocalProblem a { var x: float;\n" + "".join(f"  param q{i}: float = fn{i}(1);\n" for i in range(3000)) + "  minimize square(x); }\n"), "E0105", (3, 21)),
    Case("families_over_objects_cap", _spec(H + "".join(f"LocalProblem f{k}[i in 0..99999] {{ var x: float; minimize square(x); }}\n" for k in range(3))), "E0007", (4, 16)),
    Case("plan_deltas_200", _deltas, "E0007", (2 + limits.MAX_DELTA_OBJECTS // 500 + 1, 11)),
    # -- files that are not regular files, or too big, or outside ------------------------------------
    Case("root_fifo", lambda f: (os.mkfifo(f / "t.cat"), ["check", "t.cat"])[1], "E0005", (1, 1)),
    Case("root_dev_zero", lambda f: (os.symlink("/dev/zero", f / "t.cat"), ["check", "t.cat"])[1], "E0005", (1, 1)),
    Case("root_directory", lambda f: ["check", "."], "E0005", (1, 1)),
    Case("root_missing", lambda f: ["check", "nope.cat"], "E0005", (1, 1)),
    Case("root_sparse_huge", lambda f: (_sparse("t.cat", limits.MAX_SPEC_BYTES + 1)(f), ["check", "t.cat"])[1], "E0005", (1, 1)),
    Case("import_fifo", _with(_fifo("pipe.cat"), H + 'import "pipe.cat";\n' + OK), "E0104", (2, 1)),
    Case("import_sparse_huge", _with(_sparse("big.cat", limits.MAX_SPEC_BYTES + 1), H + 'import "big.cat";\n' + OK), "E0104", (2, 1)),
    Case("import_symlink_out", _with(lambda f: os.symlink(_outside(f) / "lib.cat", f / "lib.cat"), H + 'import "lib.cat";\n' + OK), "E0108", (2, 1), ("TOPSECRET",)),
    Case("import_symlinked_folder", _with(lambda f: os.symlink(_outside(f), f / "vendor"), H + 'import "vendor/secret.txt";\n' + OK), "E0108", (2, 1), ("TOPSECRET",)),
    Case("import_dev_zero_link", _with(_link("zero.cat", "/dev/zero"), H + 'import "zero.cat";\n' + OK), "E0108", (2, 1)),
    Case("load_fifo", _with(_fifo("pipe.npy"), H + LOAD.format("pipe.npy")), "E0602", (2, 38)),
    Case("load_dev_zero_allowed", _with(_link("zero.npy", "/dev/zero"), H + LOAD.format("zero.npy"), ("--allow-path", "/dev")), "E0602", (2, 38)),
    Case("load_symlink_out", _with(lambda f: os.symlink(_outside(f) / "data.npy", f / "d.npy"), H + LOAD.format("d.npy")), "E0605", (2, 38)),
    Case("load_sparse_huge", _with(_sparse("big.npy", limits.MAX_DATA_BYTES + 1), H + LOAD.format("big.npy")), "E0602", (2, 38)),
    Case("load_npy_claims_1e11", _with(_npy("lie.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }"), H + LOAD.format("lie.npy")), "E0602", (2, 38)),
    Case("load_npy_short_payload", _with(_npy("short.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (1000,), }"), H + LOAD.format("short.npy")), "E0602", (2, 38)),
    Case("load_npy_object_dtype", _with(_npy("obj.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"), H + LOAD.format("obj.npy")), "E0602", (2, 38)),
    Case("load_npy_header_garbage", _with(_npy("junk.npy", "{'descr': __import__('os').system('touch PWNED'), }"), H + LOAD.format("junk.npy")), "E0602", (2, 38)),
    Case("imported_spec_loads_outside", _with(_imported_neighbour, H + 'import "lib.cat";\n' + OK), "E0605", (2, 38)),
    # -- names that reach the terminal ---------------------------------------------------------------
    Case("escape_in_file_name", _spec(H + "LocalProblem a { var x: float; minimize square(y); }\n", "evil\x1b]0;PWNED\x07\x1b[2J.cat"), "E0101", (2, 48), ("\x1b", "\x07")),
    Case("injection_file_name", _spec(H + "LocalProblem a { var x: float; minimize square(y); }\n", 'x"""+__import__("os").system("touch PWNED")+""".cat'), "E0101", (2, 48)),
    # -- command line ------------------------------------------------------------------------------
    Case("compile_out_onto_file", _compile_out("file"), None),
    Case("compile_out_symlink", _compile_out("symlink"), None),
    Case("compile_out_too_long", _compile_out("long"), None),
    Case("solve_var_10e10", _solve(H + "LocalProblem a { var x: float[100000, 100000]; minimize sum_squares(x); }\n"), "E0007", (2, 25)),
]

CASES = COMMITTED + GENERATED
FAST = {"import_etc_passwd", "var_10e10", "sum_chain_4mb", "root_fifo", "load_npy_claims_1e11", "compile_out_onto_file", "forward_references_3000", "terminal_escape_comment"}


def test_corpus_is_large_and_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 60, len(CASES)
    assert FAST <= set(names)


@pytest.mark.parametrize(
    "case", [c if c.name in FAST else pytest.param(c, marks=pytest.mark.slow) for c in CASES], ids=lambda c: c.name
)
def test_hostile_input_gets_a_located_diagnostic_in_bounded_time_and_memory(case: Case, tmp_path: Path) -> None:
    folder = tmp_path / "spec"
    folder.mkdir()
    args = case.make(folder)
    outcome = run_catoptc(args, folder)
    check_outcome(case, outcome)
    assert not (folder / "PWNED").exists() and not (tmp_path / "PWNED").exists()
