"""``python -m benchmarks [--quick] [--only NAME ...] [--out DIR]``: run benchmarks, write the report.

Without ``--out`` the report goes to ``docs/benchmarks.md`` and ``docs/benchmarks.json`` of this
checkout. ``--quick`` is a smoke run (under two minutes) that proves the harness works; its
numbers are not meant to be read, and nothing ever asserts a time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import BENCHMARKS, run_all, write_report

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the benchmarks and write the report; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: proves the harness runs")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only this benchmark (repeatable or comma-separated): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for benchmarks.md/.json (default: docs/ for a full run; a partial or --quick run "
        "must name one, so it never replaces the committed full report)",
    )
    args = parser.parse_args(argv)
    only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = [n for n in only if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    out = args.out
    if out is None:
        if only or args.quick:
            parser.error("--only and --quick runs need --out DIR: docs/benchmarks.md holds one full run")
        out = DEFAULT_OUT
    report = run_all(quick=args.quick, only=only)
    md, js = write_report(report, out)
    print(md)
    print(js)
    return 0


if __name__ == "__main__":
    sys.exit(main())
