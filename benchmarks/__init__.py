"""catoptc benchmarks: ``python -m benchmarks [--quick] [--only NAME] [--out DIR]``.

Each ``bench_*.py`` module has ``run(quick: bool) -> dict``; :mod:`benchmarks.harness` runs them,
describes the machine and writes ``docs/benchmarks.md`` and ``docs/benchmarks.json``.
"""
