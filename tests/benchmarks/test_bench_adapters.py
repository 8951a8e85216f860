"""bench_adapters runs end to end and reports both comparisons (times are never asserted)."""

from __future__ import annotations

import pytest

from benchmarks.bench_adapters import run
from benchmarks.harness import BENCHMARKS, result_from_dict


@pytest.mark.slow
def test_quick_run_reports_prox_costs_and_overhead() -> None:
    raw = run(quick=True)
    assert "adapters" in BENCHMARKS
    assert [r["loss"] for r in raw["rows"]] == ["least squares", "logistic"]
    for row in raw["rows"]:
        assert row["adapter_step_s"] > 0 and row["cat_step_s"] > 0 and row["bare_torch_step_s"] > 0
        assert row["adapter_error"] < 1e-8  # the adapter's steps are exact prox points
    # the .cat tenant of each loss runs its local method (least squares: the KKT solve; logistic: Newton)
    assert [r["cat_path"] for r in raw["rows"]] == ["kkt", "newton"]
    result = result_from_dict("adapters", raw)
    assert [t.title.split(" ")[0] for t in result.tables] == ["One", "Adapter", "Discovery"]
