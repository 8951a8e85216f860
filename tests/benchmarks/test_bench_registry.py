"""``benchmarks/bench_registry.py --quick`` runs and reports both tables (times are not asserted)."""

from __future__ import annotations

from benchmarks.bench_registry import run
from benchmarks.harness import BENCHMARKS, result_from_dict


def test_quick_registry_benchmark_reports_registrations_and_lookups() -> None:
    assert BENCHMARKS["registry"][0] == "benchmarks.bench_registry"
    raw = run(quick=True)
    assert [c["registrations"] for c in raw["cases"]] == [200, 200, 200]
    assert all(c["per_s"] > 0 and c["db_bytes"] > 0 for c in raw["cases"])
    assert set(raw["lookups"]) == {"get(subject, version)", "get(subject, latest)", "lookup by content"}
    result = result_from_dict("registry", raw, 1.0)
    assert result.skipped is None and len(result.tables) == 2
    assert [r[:3] for r in result.tables[0].rows] == [
        ("synchronous=FULL", "BACKWARD", "200"), ("synchronous=NORMAL", "BACKWARD", "200"),
        ("synchronous=NORMAL", "FULL_TRANSITIVE", "200")]
