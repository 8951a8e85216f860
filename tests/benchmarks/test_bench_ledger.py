"""The ledger benchmark's measurements on a small ledger (no timings asserted, only their shape)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_ledger import _ledger_numbers, run
from benchmarks.harness import BENCHMARKS, result_from_dict


def test_small_ledger_measurements_are_consistent(tmp_path: Path) -> None:
    led = _ledger_numbers(250, tmp_path, single_budget_s=0.0)
    assert led["entries"] == 250 and led["single_entries"] >= 200  # at least 200 single appends
    for key in ("batched_per_s", "single_per_s", "verify_s", "open_s", "fsync_ms", "cpu_us_per_entry"):
        assert led[key] > 0, key
    assert led["bytes_per_entry"] > 64 + 12  # an entry, its signature and the record frame


@pytest.mark.slow
def test_quick_run_reports_three_judged_targets() -> None:
    raw = run(quick=True)
    assert raw["signing"]["same_result"] == 1.0  # signing changed no iterate
    assert raw["signing"]["signatures_per_round"] > 0 and raw["signing"]["verifications_per_round"] > 0
    result = result_from_dict("ledger", raw)
    assert "ledger" in BENCHMARKS and result.skipped is None
    assert [t.name for t in result.targets] == [
        "durable signed appends", "full verify", "signing cost per ADMM round (sites_200)"]
    assert all(t.met is not None for t in result.targets)
    assert len(result.tables) == 2
