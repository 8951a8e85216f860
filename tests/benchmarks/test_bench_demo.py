"""The demo benchmark runs, holds its checks and states its target honestly (no verdict when quick)."""

from __future__ import annotations

import pytest

from benchmarks.harness import BENCHMARKS, result_from_dict

pytest.importorskip("matplotlib")


@pytest.mark.slow
def test_quick_demo_benchmark() -> None:
    from benchmarks import bench_demo

    assert BENCHMARKS["demo"][0] == "benchmarks.bench_demo"
    raw = bench_demo.run(quick=True)
    result = result_from_dict("demo", raw)
    assert result.skipped is None
    (target,) = result.targets
    assert target.met is None and "quick" in target.reason
    rows = dict(tuple(r) for r in raw["tables"][0]["rows"])
    assert rows["solves checked against a centralised solve"] == "4 of 4"
