"""``python -m benchmarks --quick --only compiler`` into a temp dir: the harness runs end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_compiler_run_writes_both_reports(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "compiler", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((tmp_path / "benchmarks.json").read_text(encoding="utf-8"))
    md = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert data["quick"] is True
    assert [b["name"] for b in data["benchmarks"]] == ["compiler"]
    (bench,) = data["benchmarks"]
    assert bench["skipped"] is None
    cases = bench["raw"]["cases"]
    assert [(c["kind"], c["n"], c["front_only"]) for c in cases] == [
        ("written", 10, False), ("written", 100, False), ("family", 100, False), ("written", 100, True)]
    for case in cases:
        for sample in case["samples"]:
            assert "error" not in sample, sample
            assert sample["front_s"] > 0
            assert sample["peak_rss_mib"] >= sample["baseline_rss_mib"] > 0
            if case["front_only"]:
                assert sample["emit_s"] == {} and sample["objects"] is None
            else:
                assert sample["objects"] == case["n"]
                assert "python" in sample["emit_s"] and sample["files"]["python"] > 1
    # The first table has one row per case, the second one row for the examples and one per
    # adversarial shape; the two compiler targets, the four speed targets (scaled to the quick
    # sizes) and one throughput target per shape are judged.
    table, throughput = bench["tables"]
    assert len(table["rows"]) == len(cases)
    shapes = bench["raw"]["throughput"]["shapes"]
    assert len(throughput["rows"]) == 1 + len(shapes) == 5
    for shape in shapes:
        for run in shape["runs"]:
            assert "error" not in run, run
            assert run["specs"][0]["seconds"] > 0 and run["specs"][0]["bytes"] > 0
    assert {t["verdict"] for t in bench["targets"]} <= {"met", "MISSED"} and len(bench["targets"]) == 6 + len(shapes)
    speed = [t for t in bench["targets"] if "(--quick: scaled)" in t["name"]]
    assert [t["required"] for t in speed] == [
        "< 0.0400 s", "< 0.400 s", ">= 20,000 spec lines/s on the 10- and 100-object specs",
        "< 600 MiB (the process's peak RSS, imports included)"]
    assert all(t["measured"] != "not measured" for t in speed)
    assert "## Compiler: parse + check + lower + emit (`compiler`)" in md
    assert data["machine"]["cores"] >= 1 and data["versions"]["python"].count(".") == 2
