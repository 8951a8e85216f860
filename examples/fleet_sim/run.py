"""Run the fleet simulation from Python (what `catoptc demo fleet` does), then look at the results.

    python examples/fleet_sim/run.py [HOURS] [OUT]
"""

from __future__ import annotations

import sys

from catopt_dsl.demo.fleet import run_fleet
from catopt_dsl.demo.report import write_fleet_report

hours = int(sys.argv[1]) if len(sys.argv) > 1 else 24
out = sys.argv[2] if len(sys.argv) > 2 else "fleet-report"
run = run_fleet(out, hours=hours, backend="distributed", progress=print)
report = write_fleet_report(run, f"{out}/report.html")
for h in run.hours:
    shares = ", ".join(f"{t}={sum(x):.1f}" for t, x in sorted(h.allocations.items()))
    print(f"hour {h.hour:2d}: {shares}")
print(f"every check held: {run.all_checks}; ledger verified: {run.ledger_ok}; report: {report}")
sys.exit(0 if run.all_checks and run.ledger_ok else 1)
