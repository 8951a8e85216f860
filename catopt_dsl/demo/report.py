"""The demos' reports: one self-contained HTML file each, charts embedded as PNG data URIs.

The charts come from :mod:`catopt_dsl.plotting` (the one place catoptc draws); this module only
hands them the numbers and lays out the page. Every value shown is read from the run's records,
and the fleet report states whether the ledger verified.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from catopt_dsl import plotting
from catopt_dsl.demo.fleet import REL_TOL, FleetRun
from catopt_dsl.demo.scenario import CLASSES

if TYPE_CHECKING:
    from catopt_dsl.demo.hil import HilRun

__all__ = ["fleet_charts", "write_fleet_report", "write_hil_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f3f3f3; } td.l { text-align: left; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #cf222e; font-weight: bold; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _num(v: float | None, fmt: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _mark(ok: bool) -> str:
    return '<span class="ok">pass</span>' if ok else '<span class="bad">FAIL</span>'


def _page(title: str, body: Sequence[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def fleet_charts(run: FleetRun) -> dict[str, bytes]:
    """The fleet report's charts, name -> PNG bytes."""
    hours = [h.hour for h in run.hours]
    tenants = sorted({t for h in run.hours for t in h.allocations} | set(run.tenants))
    alloc = {t: [h.allocations.get(t, (0.0, 0.0, 0.0)) for h in run.hours] for t in tenants}
    solves = [(h.hour, s) for h in run.hours for s in h.solves]
    labels = [f"h{hour:02d}" + ("" if s.label == "plan" else f" {s.label}") for hour, s in solves]
    return {
        "allocations": plotting.allocation_chart(hours, CLASSES, alloc, [h.capacity for h in run.hours]),
        "residuals": plotting.residual_chart(
            [(lab, [r[0] for r in s.history], [r[1] for r in s.history]) for lab, (_, s) in zip(labels, solves)]
        ),
        "iterations": plotting.iterations_chart(
            hours, [h.final.iterations for h in run.hours], [h.final.cold_iterations for h in run.hours]
        ),
        "checks": plotting.check_chart(labels, [s.rel_error for _, s in solves], REL_TOL),
    }


def write_fleet_report(run: FleetRun, path: str | Path) -> Path:
    """Write the fleet run's HTML report to ``path``."""
    charts = fleet_charts(run)
    n_checks = sum(len(h.solves) for h in run.hours)
    passed = sum(1 for h in run.hours for s in h.solves if s.check)
    warm = [h.final for h in run.hours if h.final.cold_iterations is not None]
    saved = sum((s.cold_iterations or 0) - s.iterations for s in warm)
    body = [
        "<h1>catoptc demo fleet</h1>",
        (f"<p>{len(run.hours)} simulated hours, backend <code>{html.escape(run.backend)}</code>, "
        f"{run.seconds:.1f} s wall-clock. Three domains (cloud CUDA, on-prem ROCm, edge CPU), "
        f"{len(run.tenants)} tenants. Every hour the plan changes through a PlanDelta and is re-solved "
        "warm; protocol runs inject message drops and duplicates, and a domain goes dark mid-run.</p>"),
        "<h2>Summary</h2><ul>",
        (f"<li>centralised checks: {passed} of {n_checks} within {REL_TOL:g} relative objective "
        f"{_mark(passed == n_checks)}</li>"),
        (f"<li>warm starts: {sum(s.iterations for s in warm)} iterations where cold solves took "
        f"{sum(s.cold_iterations or 0 for s in warm)} ({saved} saved)</li>"),
        f"<li>ledger <code>{html.escape(run.ledger.name if run.ledger else '-')}</code>: {run.ledger_entries} signed "
        f"entries, verified {_mark(run.ledger_ok)}"
        + "".join(f"<br>{html.escape(p)}" for p in run.ledger_problems)
        + "</li>",
        f"<li>jobs finished: {len(run.finished)}; finished after their deadline: {len(run.missed)}</li>",
        "</ul>",
        "<h2>Allocations over time</h2>",
        _img(charts["allocations"], "accelerator-hours per tenant and class over time"),
        "<h2>Residuals per re-solve</h2>",
        _img(charts["residuals"], "primal and dual residuals per iteration of every re-solve"),
        "<h2>Iterations saved by warm starts</h2>",
        _img(charts["iterations"], "warm and cold iterations per hour"),
        "<h2>Hourly checks against a centralised solve</h2>",
        _img(charts["checks"], "relative objective error of every solve"),
        ("<table><tr><th>hour</th><th>solve</th><th>status</th><th>objective</th><th>centralised</th>"
        "<th>rel. error</th><th>check</th><th>iterations</th><th>cold</th><th>r_prim</th><th>r_dual</th>"
        "<th>dropped members</th><th>dup. frames</th><th>retransmits</th><th>s</th>"
        "<th class=l>joined / left</th><th class=l>events</th></tr>"),
    ]
    for h in run.hours:
        for s in h.solves:
            status = s.status + (f" (remaining: {s.remaining_status})" if s.status == "member_lost" else "")
            body.append(
                f"<tr><td>{h.hour}</td><td class=l>{html.escape(s.label)}</td><td class=l>{html.escape(status)}</td>"
                f"<td>{_num(s.objective)}</td><td>{_num(s.centralized)}</td><td>{_num(s.rel_error, '.1e')}</td>"
                f"<td>{_mark(s.check)}</td><td>{s.iterations}</td>"
                f"<td>{'-' if s.cold_iterations is None else s.cold_iterations}</td>"
                f"<td>{_num(s.r_prim, '.1e')}</td><td>{_num(s.r_dual, '.1e')}</td><td>{s.dropped}</td>"
                f"<td>{s.duplicates}</td><td>{s.retransmits}</td><td>{s.seconds:.2f}</td>"
                f"<td class=l>{html.escape(' '.join('+' + t for t in h.joined) + ' ' + ' '.join('-' + t for t in h.left))}</td>"
                f"<td class=l>{html.escape('; '.join(h.events))}</td></tr>"
            )
    body.append("</table>")
    body.append("<p>Each hour's spec (last hour's plan and the PlanDelta) is in <code>specs/</code>; "
                "<code>catoptc ledger verify ledger.catlog</code> re-checks the ledger.</p>")
    out = Path(path)
    out.write_text(_page("catoptc demo fleet", body), encoding="utf-8")
    return out


def write_hil_report(run: HilRun, path: str | Path) -> Path:
    """Write the hardware-in-the-loop run's HTML report to ``path``."""
    body = ["<h1>catoptc demo hil</h1>",
            ("<p>Device throughput measured through the hardware adapters is the plan's capacity; each "
            "tenant then runs its planned share of a real workload (torch training steps) on the device, "
            "and the achieved throughput is compared with the plan.</p>")]
    for dev in run.devices:
        body.append(f"<h2>{html.escape(dev.platform)}: {html.escape(dev.name)}</h2>")
        if dev.skipped:
            body.append(f"<p><b>skipped</b>: {html.escape(dev.skipped)}</p>")
            continue
        body.append(f"<p>measured capacity {dev.capacity_ncu:.4f} ncu ({html.escape(dev.adapter_note)}); "
                    f"plan status {html.escape(dev.status)}, relative objective error against the centralised "
                    f"solve {_num(dev.rel_objective_error, '.1e')}. Error = achieved / planned - 1: how far a real "
                    "training step falls from the probe's dense-matmul rate.</p>")
        png = plotting.throughput_chart([t.tenant for t in dev.tenants], [t.planned for t in dev.tenants],
                                        [t.achieved for t in dev.tenants], "samples/s",
                                        f"{dev.platform}: planned vs achieved throughput")
        body.append(_img(png, f"planned and achieved throughput on {dev.platform}"))
        body.append("<table><tr><th class=l>tenant</th><th>share</th><th>planned samples/s</th>"
                    "<th>achieved samples/s</th><th>error</th><th>steps</th><th>loss first -> last</th></tr>")
        for t in dev.tenants:
            body.append(f"<tr><td class=l>{html.escape(t.tenant)}</td><td>{t.share:.3f}</td><td>{t.planned:.1f}</td>"
                        f"<td>{t.achieved:.1f}</td><td>{100 * t.rel_error:+.1f}%</td><td>{t.steps}</td>"
                        f"<td>{t.loss_first:.4f} -> {t.loss_last:.4f}</td></tr>")
        body.append("</table>")
    out = Path(path)
    out.write_text(_page("catoptc demo hil", body), encoding="utf-8")
    return out
