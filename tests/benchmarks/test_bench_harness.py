"""The harness's statistics, formatting, adapters and Markdown/JSON writers (no timings asserted)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.harness import (
    BenchResult,
    Report,
    Table,
    Target,
    fmt_num,
    fmt_stats,
    render_json,
    render_markdown,
    result_from_dict,
    summarize,
    write_report,
)


def _report() -> Report:
    solver = BenchResult(
        name="solver",
        title="Solver: time to gap",
        tables=(Table("lasso N = 64", ("method", "time s"), (("fast | path", "0.130"), ("central", "0.490"))),),
        targets=(Target("fast >= 5x", ">= 5x", "3.77x", False, "set-up dominates"),
                 Target("widening", "increasing", "1.5, 3.7", True)),
        notes=("a note",),
        elapsed_s=12.5,
        raw={"value": float("nan"), "inf": float("inf"), "n": 3, "nested": {"a": (1.0, 2.0)}},
    )
    ray = BenchResult(name="ray", title="Ray", skipped="not available: no backend")
    return Report(
        quick=True,
        machine={"cpu": "Test CPU", "cores": 2, "usable_cores": 2, "memory_gib": 8.0, "os": "Linux"},
        versions={"python": "3.11.7", "numpy": "2.0"},
        results=(solver, ray),
        started="2026-01-01 00:00:00 UTC",
        wall_s=42.0,
        load_before=(1.0, 1.0, 1.0),
        load_after=(2.0, 1.5, 1.0),
    )


def test_summarize_median_min_max_and_nan_dropping() -> None:
    s = summarize([3.0, 1.0, float("nan"), 2.0, 10.0])
    assert s == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    empty = summarize([float("nan")])
    assert empty["n"] == 0 and math.isnan(empty["median"])


def test_number_formatting() -> None:
    assert fmt_num(0.123456) == "0.123"
    assert fmt_num(12.3456) == "12.3"
    assert fmt_num(1234.5) == "1234" or fmt_num(1234.5) == "1235"
    assert fmt_num(1.5e-7) == "1.50e-07"
    assert fmt_num(None) == "-" and fmt_num(float("nan")) == "-"
    assert fmt_stats({"median": 2.0, "min": 1.0, "max": 4.0, "n": 3}) == "2.00 (1.00-4.00, n=3)"
    assert fmt_stats({"median": 2.0, "min": 2.0, "max": 2.0, "n": 1}) == "2.00"


def test_markdown_has_machine_versions_tables_and_verdicts() -> None:
    md = render_markdown(_report())
    lines = md.splitlines()
    assert "| Test CPU | 2 (2) | 8.0 GiB | Linux |" in lines
    assert "| 3.11.7 | 2.0 |" in lines
    # The pipe inside a cell is escaped, so the row keeps exactly two cells.
    row = next(line for line in lines if line.startswith("| fast \\| path"))
    assert row.replace("\\|", "").count("|") == 3
    summary = [line for line in lines if line.startswith("| solver | fast >= 5x")]
    assert len(summary) == 1 and "| MISSED | set-up dominates |" in summary[0]
    assert any("| widening |" in line and "| met |" in line for line in lines)
    assert "Skipped: not available: no backend" in lines
    # Every table row has as many cells as its header.
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            width = lines[i - 1].replace("\\|", "").count("|")
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert lines[j].replace("\\|", "").count("|") == width, lines[j]
                j += 1


def test_json_is_plain_sorted_and_nan_free(tmp_path: Path) -> None:
    report = _report()
    md_path, js_path = write_report(report, tmp_path / "out")
    assert md_path.read_text(encoding="utf-8") == render_markdown(report)
    data = json.loads(js_path.read_text(encoding="utf-8"))
    assert js_path.read_text(encoding="utf-8") == render_json(report)  # deterministic
    bench = {b["name"]: b for b in data["benchmarks"]}
    assert bench["ray"]["skipped"] == "not available: no backend"
    raw = bench["solver"]["raw"]
    assert raw["value"] is None and raw["inf"] is None and raw["n"] == 3 and raw["nested"]["a"] == [1.0, 2.0]
    verdicts = [t["verdict"] for t in bench["solver"]["targets"]]
    assert verdicts == ["MISSED", "met"]
    assert data["machine"]["cpu"] == "Test CPU"
    assert "NaN" not in js_path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("iters", "met"), [((40, 50, 70), True), ((14, 53, 92), False)])
def test_rho_adapter_computes_the_spread(iters: tuple[int, int, int], met: bool) -> None:
    raw = {
        "rows": [
            {"rho0": r, "iterations": k, "status": "optimal", "objective": 10.0 + 1e-6, "final_rho": 1.0, "time_s": 0.1}
            for r, k in zip((0.01, 1.0, 100.0), iters)
        ],
        "centralized_objective": 10.0,
    }
    result = result_from_dict("rho", raw)
    (target,) = result.targets
    assert target.met is met
    assert f"{max(iters) / min(iters):.2f}" in target.measured
    assert [row[1] for row in result.tables[0].rows] == [str(k) for k in iters]


def test_codec_adapter_judges_the_largest_frame() -> None:
    sizes = {
        "1000": {"frame_bytes": 8140.0, "codec_gbps": 0.1, "codec_copy_gbps": 0.1, "plain_gbps": 3.0,
                 "ratio": 0.03, "ratio_copy": 0.03},
        "10000000": {"frame_bytes": 8e7 + 140, "codec_gbps": 1.0, "codec_copy_gbps": 0.9, "plain_gbps": 2.5,
                     "ratio": 0.4, "ratio_copy": 0.36},
    }
    result = result_from_dict("codec", {"quick": False, "sizes": sizes})
    (target,) = result.targets
    assert target.met is False and target.measured.startswith("0.40 x at 1e+07")
    assert [row[0] for row in result.tables[0].rows] == ["1e3", "1e7"]


def test_skipped_and_generic_results() -> None:
    skipped = result_from_dict("ray", {"skipped": "not available: x"})
    assert skipped.skipped == "not available: x" and not skipped.tables
    generic = result_from_dict("warmstart", {"rows": [{"a": 1, "b": 2.5}, {"a": 3}], "speedup": 2.0})
    titles = [t.title for t in generic.tables]
    assert titles == ["summary", "rows"]
    assert generic.tables[1].rows == (("1", "2.50"), ("3", "-"))


def test_partial_runs_never_replace_the_full_report() -> None:
    import pytest

    from benchmarks.__main__ import main

    for argv in (["--only", "rho"], ["--quick"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
