"""The benchmark harness: run benchmarks, describe the machine, write ``benchmarks.md`` + ``.json``.

Every benchmark module exposes ``run(quick: bool) -> dict``. The harness turns each raw dict into
a :class:`BenchResult` (tables, targets, notes) -- directly for this package's own modules, which
already return ``{"tables": [...], "targets": [...], "notes": [...]}``, and through small adapters
for the modules other people own (``bench_rho``, ``bench_codec``, ``bench_warmstart``) whose dicts
have their own shape. A benchmark that cannot run (a backend not written yet, a missing optional
dependency) is reported as skipped with the reason, never silently dropped.

Timings are never asserted anywhere: the report *states* each target as met or MISSED, with the
ratio measured in the same run.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import math
import numbers
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BENCHMARKS",
    "BenchResult",
    "Report",
    "Table",
    "Target",
    "fmt_num",
    "fmt_stats",
    "machine_info",
    "render_json",
    "render_markdown",
    "result_from_dict",
    "run_all",
    "summarize",
    "versions",
    "write_report",
]

#: Benchmark name -> (module, one-line title), in report order.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "compiler": ("benchmarks.bench_compiler", "Compiler: parse + check + lower + emit"),
    "solver": ("benchmarks.bench_solver", "Solver: time to a relative objective gap of 1e-4"),
    "local": ("benchmarks.bench_local", "Local solvers: every plan class against centralised CVXPY; catoptc against a hand-written ADMM"),
    "native": ("benchmarks.bench_native", "Native solvers: generated C++ vs Python in-process ADMM vs centralised CVXPY"),
    "rho": ("benchmarks.bench_rho", "Iterations to 1e-4 against the initial rho"),
    "codec": ("benchmarks.bench_codec", "Wire codec: Delta frame encode + decode throughput"),
    "ray": ("benchmarks.bench_ray", "Ray runtime: per-round overhead and crossover"),
    "warmstart": ("benchmarks.bench_warmstart", "Warm start after a plan delta"),
    "registry": ("benchmarks.bench_registry", "Schema registry: registrations and lookups per second (SQLite)"),
    "ledger": ("benchmarks.bench_ledger", "Governance ledger and signed frames"),
    "adapters": ("benchmarks.bench_adapters", "Adapters: a torch tenant's prox step vs the same loss in .cat"),
    "demo": ("benchmarks.bench_demo", "The fleet demo: a simulated day in this process"),
}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One Markdown table: a caption, column headers and already-formatted cells."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "columns": list(self.columns), "rows": [list(r) for r in self.rows]}


@dataclass(frozen=True)
class Target:
    """A goal from the issue, with what this run measured. ``met`` is None when not measurable."""

    name: str
    required: str
    measured: str
    met: bool | None
    reason: str = ""

    @property
    def verdict(self) -> str:
        return "n/a" if self.met is None else "met" if self.met else "MISSED"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "required": self.required,
            "measured": self.measured,
            "met": self.met,
            "verdict": self.verdict,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class BenchResult:
    """One benchmark's outcome. ``skipped`` holds the reason when it did not run at all."""

    name: str
    title: str
    tables: tuple[Table, ...] = ()
    targets: tuple[Target, ...] = ()
    notes: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    skipped: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "skipped": self.skipped,
            "elapsed_s": self.elapsed_s,
            "notes": list(self.notes),
            "tables": [t.to_json() for t in self.tables],
            "targets": [t.to_json() for t in self.targets],
            "raw": _jsonable(self.raw),
        }


@dataclass(frozen=True)
class Report:
    """Everything one ``python -m benchmarks`` run produced."""

    quick: bool
    machine: dict[str, Any]
    versions: dict[str, str]
    results: tuple[BenchResult, ...]
    started: str
    wall_s: float
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "started": self.started,
            "wall_s": self.wall_s,
            "machine": self.machine,
            "versions": self.versions,
            "load_before": None if self.load_before is None else list(self.load_before),
            "load_after": None if self.load_after is None else list(self.load_after),
            "benchmarks": [r.to_json() for r in self.results],
        }


# ---------------------------------------------------------------------------------------------
# Statistics and formatting
# ---------------------------------------------------------------------------------------------


def summarize(samples: Iterable[float | None]) -> dict[str, float]:
    """``{"median", "min", "max", "n"}`` of the samples (NaNs dropped; all NaN if none remain)."""
    values = [float(s) for s in samples if s is not None and not math.isnan(float(s))]
    if not values:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt_num(value: float | None, digits: int = 3) -> str:
    """A compact number: ``digits`` significant digits, no exponent for everyday magnitudes."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    v = float(value)
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e6:
        decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v)))))
        return f"{v:.{decimals}f}"
    return f"{v:.{digits - 1}e}"


def fmt_stats(stats: dict[str, float], digits: int = 3) -> str:
    """``median (min-max, n=k)``; just the value when there was one sample."""
    if not stats or stats.get("n", 0) == 0:
        return "-"
    med = fmt_num(stats["median"], digits)
    if stats["n"] == 1:
        return med
    return f"{med} ({fmt_num(stats['min'], digits)}-{fmt_num(stats['max'], digits)}, n={int(stats['n'])})"


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return fmt_num(value)
    if value is None:
        return "-"
    return str(value)


def _md_escape(text: str) -> str:
    # A pipe would end the cell; newlines would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _jsonable(value: Any) -> Any:
    """Plain JSON types only (numpy scalars/arrays, tuples and NaN handled)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):  # numpy integers register here too
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f  # JSON has no NaN/inf; the table shows them
    tolist = getattr(value, "tolist", None)
    return _jsonable(tolist()) if callable(tolist) else str(value)


# ---------------------------------------------------------------------------------------------
# Machine and versions
# ---------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores (and those this process may use), memory, OS."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    mem = _memory_gib()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 1,
        "usable_cores": usable,
        "memory_gib": None if mem is None else round(mem, 1),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
    }


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Versions of python and every library the numbers depend on (read from metadata, no imports)."""
    import catopt_dsl

    out = {"python": platform.python_version(), "catopt_dsl": str(getattr(catopt_dsl, "__version__", "?"))}
    for dist in ("numpy", "scipy", "cvxpy", "clarabel", "osqp", "scs", "lark", "black", "ray"):
        out[dist] = _dist_version(dist)
    return out


# ---------------------------------------------------------------------------------------------
# Adapters: raw dicts -> BenchResult
# ---------------------------------------------------------------------------------------------


def _tables_from(raw: dict[str, Any]) -> tuple[Table, ...]:
    return tuple(
        Table(
            str(t.get("title", "")),
            tuple(str(c) for c in t["columns"]),
            tuple(tuple(_cell(c) for c in row) for row in t["rows"]),
        )
        for t in raw.get("tables", ())
    )


def _targets_from(raw: dict[str, Any]) -> tuple[Target, ...]:
    return tuple(
        Target(str(t["name"]), str(t["required"]), str(t["measured"]), t.get("met"), str(t.get("reason", "")))
        for t in raw.get("targets", ())
    )


def _rho_result(raw: dict[str, Any]) -> tuple[tuple[Table, ...], tuple[Target, ...], tuple[str, ...]]:
    rows = raw.get("rows", [])
    ref = raw.get("centralized_objective")
    table_rows = []
    for r in rows:
        obj = r.get("objective")
        gap = abs(obj - ref) / max(1.0, abs(ref)) if obj is not None and ref is not None else None
        table_rows.append(
            (
                _cell(float(r["rho0"])),
                _cell(r["iterations"]),
                _cell(r["status"]),
                _cell(obj),
                _cell(gap),
                _cell(r.get("final_rho")),
                _cell(r.get("time_s")),
            )
        )
    table = Table(
        "Iterations to eps_rel = 1e-4 (adaptive rho)",
        ("initial rho", "iterations", "status", "objective", "rel. gap to centralised", "final rho", "time s"),
        tuple(table_rows),
    )
    iters = [int(r["iterations"]) for r in rows if r.get("iterations")]
    if iters:
        spread = max(iters) / max(1, min(iters))
        ok = spread < 2.0 and all(r.get("status") == "optimal" for r in rows)
        reason = "" if ok else (
            "not every start converged" if spread < 2.0 else "the adaptive rule does not fully undo a bad initial rho"
        )
        target = Target(
            "iterations flat across initial rho {0.01, 1, 100}",
            "max/min < 2",
            f"max/min = {spread:.2f} ({min(iters)}..{max(iters)} iterations)",
            ok,
            reason,
        )
    else:
        target = Target("iterations flat across initial rho", "max/min < 2", "no rows", None, "no data")
    notes = ("16-tenant consensus lasso (each 50 x 20) from `benchmarks/bench_rho.py` (4 tenants with --quick); "
             "stopping test eps_rel = 1e-4, eps_abs = 1e-6.",)
    return (table,), (target,), notes


def _codec_result(raw: dict[str, Any]) -> tuple[tuple[Table, ...], tuple[Target, ...], tuple[str, ...]]:
    sizes = raw.get("sizes", {})
    rows = []
    for n in sorted(sizes, key=lambda s: int(s)):
        s = sizes[n]
        rows.append(
            (
                f"{int(n):.0e}".replace("e+0", "e").replace("e+", "e"),
                f"{int(s['frame_bytes']):,}" if s.get("frame_bytes") is not None else "-",
                _cell(s.get("codec_gbps")),
                _cell(s.get("codec_copy_gbps")),
                _cell(s.get("plain_gbps")),
                _cell(s.get("ratio")),
                _cell(s.get("ratio_copy")),
            )
        )
    table = Table(
        "Encode + decode of one Delta frame (median), payload GB/s",
        ("floats", "frame bytes", "codec GB/s", "codec (owned copy) GB/s", "numpy tobytes+frombuffer GB/s",
         "codec / numpy", "codec copy / numpy"),
        tuple(rows),
    )
    targets: tuple[Target, ...] = ()
    if sizes:
        largest = max(sizes, key=lambda s: int(s))
        ratio = float(sizes[largest]["ratio"])
        ratio_copy = sizes[largest].get("ratio_copy")
        copy_note = "" if ratio_copy is None else f"; decoding into an owned copy: {float(ratio_copy):.2f} x"
        size_note = "" if int(largest) >= 10**7 else f" (quick run: largest frame is {int(largest):.0e} floats)"
        targets = (
            Target(
                "codec throughput on 1e7-float frames",
                ">= 0.5 x the plain numpy copy",
                f"{ratio:.2f} x at {int(largest):.0e} floats{copy_note}{size_note}",
                ratio >= 0.5,
                "" if ratio >= 0.5 else "encode/decode does more than one pass over the payload",
            ),
        )
    notes = ("`benchmarks/bench_codec.py`: median over repeated encode+decode runs after a warm-up; "
             "the ceiling is `x.tobytes()` followed by `np.frombuffer(...).copy()` of the same floats.",)
    return (table,), targets, notes


def _generic_result(raw: dict[str, Any]) -> tuple[tuple[Table, ...], tuple[Target, ...], tuple[str, ...]]:
    """A dict of an unknown shape: a list of row dicts becomes a table, scalars a key/value table."""
    if "tables" in raw:
        return _tables_from(raw), _targets_from(raw), tuple(str(n) for n in raw.get("notes", ()))
    tables = []
    scalars = []
    for key, value in raw.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            cols = tuple(dict.fromkeys(k for v in value for k in v))
            tables.append(Table(str(key), cols, tuple(tuple(_cell(v.get(c)) for c in cols) for v in value)))
        elif not isinstance(value, (dict, list)):
            scalars.append((str(key), _cell(value)))
    if scalars:
        tables.insert(0, Table("summary", ("key", "value"), tuple(scalars)))
    return tuple(tables), (), ()


_ADAPTERS: dict[str, Callable[[dict[str, Any]], tuple[tuple[Table, ...], tuple[Target, ...], tuple[str, ...]]]] = {
    "rho": _rho_result,
    "codec": _codec_result,
}


def result_from_dict(name: str, raw: dict[str, Any], elapsed_s: float = 0.0) -> BenchResult:
    """Turn a benchmark's raw dict into a :class:`BenchResult` (``raw["skipped"]`` marks a skip)."""
    title = BENCHMARKS.get(name, ("", name))[1]
    if raw.get("skipped"):
        return BenchResult(name, title, notes=tuple(raw.get("notes", ())), elapsed_s=elapsed_s,
                           skipped=str(raw["skipped"]), raw=raw)
    adapter = _ADAPTERS.get(name, _generic_result)
    tables, targets, notes = adapter(raw)
    return BenchResult(name, title, tables, targets, notes, elapsed_s, None, raw)


def _run_one(name: str, quick: bool, log: Callable[[str], None]) -> BenchResult:
    module_name, title = BENCHMARKS[name]
    start = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return BenchResult(name, title, skipped=f"not available: {exc}", elapsed_s=time.perf_counter() - start)
    try:
        raw = module.run(quick)
    except Exception as exc:  # a broken benchmark must not take the others down; show why
        log(traceback.format_exc())
        return BenchResult(name, title, skipped=f"failed: {type(exc).__name__}: {exc}",
                           elapsed_s=time.perf_counter() - start)
    return result_from_dict(name, raw, time.perf_counter() - start)


def run_all(
    quick: bool = False, only: Sequence[str] = (), log: Callable[[str], None] | None = None
) -> Report:
    """Run the selected benchmarks (all when ``only`` is empty) and return the :class:`Report`."""
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    names = list(only) if only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t0 = time.perf_counter()
    results = []
    for name in names:
        say(f"[benchmarks] {name} ...")
        result = _run_one(name, quick, say)
        say(f"[benchmarks] {name}: {'skipped: ' + result.skipped if result.skipped else 'done'} "
            f"in {result.elapsed_s:.1f} s")
        results.append(result)
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    return Report(quick, machine_info(), versions(), tuple(results), started, time.perf_counter() - t0,
                  load_before, load_after)


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_escape(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = list(row) + [""] * (len(columns) - len(row))
        lines.append("| " + " | ".join(_md_escape(c) for c in cells[: len(columns)]) + " |")
    return lines


def render_markdown(report: Report) -> str:
    """The whole report as Markdown (one section per benchmark, targets first)."""
    m, v = report.machine, report.versions
    out = [
        "# catoptc benchmarks",
        "",
        "Written by `python -m benchmarks" + (" --quick" if report.quick else "") + "` "
        f"(started {report.started}, {report.wall_s:.0f} s in all). Regenerate with `python -m benchmarks`; "
        "`--quick` is a smoke run of the harness and its numbers mean little.",
        "",
        "## Machine",
        "",
        *_md_table(
            ("CPU", "cores (usable)", "memory", "OS"),
            [(str(m.get("cpu")), f"{m.get('cores')} ({m.get('usable_cores')})",
              "-" if m.get("memory_gib") is None else f"{m['memory_gib']} GiB", str(m.get("os")))],
        ),
        "",
    ]
    if report.load_before is not None and report.load_after is not None:
        out += [
            f"Load average (1/5/15 min) before: {', '.join(f'{x:.2f}' for x in report.load_before)}; "
            f"after: {', '.join(f'{x:.2f}' for x in report.load_after)}. A load above the core count "
            "means other work shared the CPUs and slowed every number below.",
            "",
        ]
    out += ["## Versions", "", *_md_table(tuple(v), [tuple(v.values())]), ""]
    # Summary of every target, so a reader sees what was met without reading every table.
    all_targets = [(r.name, t) for r in report.results for t in r.targets]
    if all_targets:
        out += ["## Targets", ""]
        out += _md_table(
            ("benchmark", "target", "required", "measured (same run)", "target: met/MISSED", "reason"),
            [(name, t.name, t.required, t.measured, t.verdict, t.reason or "-") for name, t in all_targets],
        )
        out.append("")
    for r in report.results:
        out += [f"## {r.title} (`{r.name}`)", ""]
        if r.skipped:
            out += [f"Skipped: {r.skipped}", ""]
        for table in r.tables:
            if table.title:
                out += [f"**{table.title}**", ""]
            out += _md_table(table.columns, table.rows)
            out.append("")
        if r.targets:
            out += _md_table(
                ("target", "required", "measured", "target: met/MISSED", "reason"),
                [(t.name, t.required, t.measured, t.verdict, t.reason or "-") for t in r.targets],
            )
            out.append("")
        for note in r.notes:
            out += [f"- {note}"]
        if r.notes:
            out.append("")
        out += [f"_{r.name}: {r.elapsed_s:.1f} s of wall time._", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def render_json(report: Report) -> str:
    """The report as JSON (sorted keys, two-space indent, NaN/inf written as null)."""
    return json.dumps(_jsonable(report.to_json()), indent=2, sort_keys=True) + "\n"


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write ``benchmarks.md`` and ``benchmarks.json`` into ``out_dir`` (created if needed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "benchmarks.md"
    js = out_dir / "benchmarks.json"
    md.write_text(render_markdown(report), encoding="utf-8")
    js.write_text(render_json(report), encoding="utf-8")
    return md, js
