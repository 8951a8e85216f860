"""Compiler benchmark: parse + check + lower + emit every target for generated specs.

Cases (``benchmarks/specgen.py``): sharing plans with 10, 100, 1,000 and 10,000 LocalProblems
written out one by one, the same plan as one 10,000-member family, and parse + check alone of the
1,000-object spec (``--quick``: 10 and 100 written out, a 100-member family, parse + check of 100).

Method: every repeat runs in a fresh subprocess (``python -m benchmarks.bench_compiler --child``)
so peak memory is that run's own ``ru_maxrss``. The child first imports everything and compiles
and emits a 2-object spec (the Lark parser and the templates are built once per process; that
fixed cost would otherwise hide the scaling), records its peak RSS as the baseline, then times
``analyze(spec)`` (parse + check + lower) and ``emit_target`` for each of python, rust and cpp.
A target whose backend module does not exist yet (ImportError) is reported as skipped.

``run(quick) -> dict`` returns ``{"tables", "targets", "notes", "cases"}`` for the harness.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import specgen
from benchmarks.harness import fmt_num, fmt_stats, summarize

TARGETS = ("python", "rust", "cpp")
ROOT = Path(__file__).resolve().parents[1]
#: Seconds one child may run before it is reported as timed out.
CHILD_TIMEOUT_S = 1500


def _rss_mib() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes; this project targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(spec: Path, front_only: bool, targets: tuple[str, ...]) -> dict[str, Any]:
    """Compile ``spec`` once in this process and return the timings (the child's whole job)."""
    from catopt_dsl.backends.emit import emit_target
    from catopt_dsl.compile import analyze

    available: list[str] = []
    skipped: dict[str, str] = {}
    for target in targets:
        try:
            __import__(f"catopt_dsl.backends.{target}")
            available.append(target)
        except ImportError as exc:
            skipped[target] = f"backend not available ({exc})"
    work = Path(tempfile.mkdtemp(prefix="catopt-bench-"))
    try:
        warm = specgen.write(work / "warm.cat", specgen.written_out(2))
        warm_plan = analyze(warm).plan
        assert warm_plan is not None, "the generated warm-up spec must compile"
        for target in list(available):
            try:
                emit_target(target, warm_plan, work / f"warm_{target}")
            except Exception as exc:  # a backend that is still being written: report, do not crash
                available.remove(target)
                skipped[target] = f"emit failed: {type(exc).__name__}: {exc}"
        baseline = _rss_mib()
        t0 = time.perf_counter()
        analysis = analyze(spec, lower=not front_only)
        front = time.perf_counter() - t0
        if not analysis.ok:
            return {"error": "spec has errors: " + "; ".join(d.message for d in analysis.diagnostics[:3])}
        emit: dict[str, float] = {}
        files: dict[str, int] = {}
        out_bytes: dict[str, int] = {}
        if not front_only and analysis.plan is not None:
            for target in available:
                out = work / f"out_{target}"
                t0 = time.perf_counter()
                paths = emit_target(target, analysis.plan, out)
                emit[target] = time.perf_counter() - t0
                files[target] = len(paths)
                out_bytes[target] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
                shutil.rmtree(out)
        objects = len(analysis.plan.objects) if analysis.plan is not None else None
        return {
            "front_s": front,
            "emit_s": emit,
            "files": files,
            "bytes": out_bytes,
            "skipped_targets": skipped,
            "objects": objects,
            "baseline_rss_mib": baseline,
            "peak_rss_mib": _rss_mib(),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _spawn(spec: Path, front_only: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_compiler", "--child", str(spec)]
    if front_only:
        cmd.append("--front-only")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"child exited {proc.returncode}: {' | '.join(tail)}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cases(quick: bool) -> list[tuple[str, str, int, int, bool]]:
    """(label, kind, n, repeats, front_only) per case."""
    if quick:
        return [
            ("written out", "written", 10, 2, False),
            ("written out", "written", 100, 2, False),
            ("one family", "family", 100, 1, False),
            ("parse + check only", "written", 100, 2, True),
        ]
    return [
        ("written out", "written", 10, 5, False),
        ("written out", "written", 100, 3, False),
        ("written out", "written", 1000, 3, False),
        ("written out", "written", 10000, 1, False),
        ("one family", "family", 10000, 1, False),
        ("parse + check only", "written", 1000, 3, True),
    ]


def run(quick: bool = False) -> dict[str, Any]:
    """Run every case (see the module docstring) and return tables, targets and the raw samples."""
    work = Path(tempfile.mkdtemp(prefix="catopt-bench-specs-"))
    cases: list[dict[str, Any]] = []
    try:
        for label, kind, n, repeats, front_only in _cases(quick):
            text = specgen.written_out(n) if kind == "written" else specgen.family(n)
            spec = specgen.write(work / f"{kind}_{n}.cat", text)
            samples = [_spawn(spec, front_only) for _ in range(repeats)]
            cases.append(
                {"label": label, "kind": kind, "n": n, "front_only": front_only, "spec_bytes": len(text),
                 "samples": samples}
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _summarise(cases, quick)


def _total(sample: dict[str, Any]) -> float | None:
    if "error" in sample:
        return None
    return float(sample["front_s"]) + sum(float(v) for v in sample["emit_s"].values())


def _summarise(cases: list[dict[str, Any]], quick: bool) -> dict[str, Any]:
    emitted = sorted({t for c in cases for s in c["samples"] for t in s.get("emit_s", {})}, key=TARGETS.index)
    skipped = {t: why for c in cases for s in c["samples"] for t, why in s.get("skipped_targets", {}).items()}
    rows = []
    medians: dict[tuple[str, int, bool], float] = {}
    for c in cases:
        ok = [s for s in c["samples"] if "error" not in s]
        errors = [s["error"] for s in c["samples"] if "error" in s]
        total = summarize(_total(s) for s in ok)
        medians[(c["kind"], c["n"], c["front_only"])] = total["median"]
        front = summarize(s["front_s"] for s in ok)
        peak = summarize(s["peak_rss_mib"] for s in ok)
        growth = summarize(s["peak_rss_mib"] - s["baseline_rss_mib"] for s in ok)
        row = [
            c["label"] + (" (ERROR: " + errors[0] + ")" if errors else ""),
            f"{c['n']:,}",
            str(len(c["samples"])),
            fmt_stats(front),
        ]
        for t in emitted:
            row.append("-" if c["front_only"] else fmt_stats(summarize(s["emit_s"].get(t) for s in ok)))
        per_obj = total["median"] / c["n"] * 1000 if ok else float("nan")
        row += [fmt_stats(total), fmt_num(per_obj), fmt_num(peak["max"]), fmt_num(growth["max"])]
        rows.append(row)
    columns = ["case", "LocalProblems", "runs", "front end s"] + [f"emit {t} s" for t in emitted] + [
        "total s", "ms per object", "peak RSS MiB", "RSS growth MiB"]
    table = {"title": "Seconds (median, min-max over fresh processes) and peak memory", "columns": columns,
             "rows": rows}
    targets = []
    big, small = (10000, 1000) if not quick else (100, 10)
    t_small, t_big = medians.get(("written", small, False)), medians.get(("written", big, False))
    if t_small and t_big and t_small == t_small and t_big == t_big:
        ratio = t_big / t_small
        scale = big / small
        met = ratio <= 1.3 * scale
        targets.append(
            {
                "name": f"near-linear growth {small:,} -> {big:,} LocalProblems",
                "required": f"time ratio <= {1.3 * scale:.0f} (1.3 x linear)",
                "measured": f"{ratio:.2f} (linear = {scale:.0f})",
                "met": met,
                "reason": "" if met else "a stage grows faster than linearly in the number of objects",
            }
        )
    pc_n = 100 if quick else 1000
    pc = medians.get(("written", pc_n, True))
    if pc is not None and pc == pc:
        targets.append(
            {
                "name": f"parse + check of {pc_n:,} written-out objects",
                "required": "< 3 s",
                "measured": f"{pc:.2f} s",
                "met": pc < 3.0,
                "reason": "" if pc < 3.0 else "front end too slow at this size",
            }
        )
    notes = [
        "Front end = `catopt_dsl.compile.analyze(spec)`: parse + check + lower (parse + check only in the "
        "last row). Each run is a fresh process after a warm-up compile of a 2-object spec, so one-time "
        "grammar/template construction is excluded. Peak RSS is the process's `ru_maxrss`; growth is "
        "peak minus the peak after the warm-up.",
        "Written-out specs give every LocalProblem and Morphism its own declaration; the family spec "
        "declares one `LocalProblem t[i in 0..N-1]` that lowering expands to N objects.",
    ]
    for target, why in sorted(skipped.items()):
        notes.append(f"Target `{target}` not measured: {why}.")
    return {"tables": [table], "targets": targets, "notes": notes, "cases": cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=Path, help="(internal) compile this spec once and print JSON")
    parser.add_argument("--front-only", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child, args.front_only, TARGETS)))
        return
    print(json.dumps(run(quick=args.quick), indent=2, default=str))


if __name__ == "__main__":
    main()
