"""`catoptc adapters list | show NAME | verify NAME`.

Exit codes follow catoptc's: 0 ok, 1 an adapter that is broken or fails the kit, 2 a usage error
(an adapter name that is not installed). Only click is imported here; the registry, the kit and
the adapters load when a command runs, so ``catoptc --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

__all__ = ["adapters"]

EXAMPLES = """
\b
Examples:
  catoptc adapters list
  catoptc adapters show cuda
  catoptc adapters verify torch
  catoptc adapters verify my_adapter --json
"""


@click.group(name="adapters", help="Framework and hardware adapters: list what is installed, show a contract, run the conformance kit.\n" + EXAMPLES)
def adapters() -> None:
    pass


def _get(name: str) -> Any:
    from catopt_dsl.adapters.api import AdapterError
    from catopt_dsl.adapters.registry import discover, get

    try:
        return get(name)
    except AdapterError as exc:
        if any(i.name == name for i in discover()):
            click.echo(f"catoptc: {exc}", err=True)
            sys.exit(1)
        raise click.UsageError(str(exc)) from exc


@adapters.command("list", epilog=EXAMPLES)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per adapter, in a list.")
def list_(as_json: bool) -> None:
    """Every adapter registered in the `catopt.adapters` entry-point group."""
    from catopt_dsl.adapters.registry import GROUP, discover

    found = discover()
    if as_json:
        click.echo(json.dumps([
            {"name": i.name, "version": i.version, "kind": i.kind, "status": i.status, "message": i.message,
             "entry_point": i.target, "distribution": i.distribution,
             "api_version": i.adapter.contract.api_version if i.adapter is not None else None}
            for i in found
        ], sort_keys=True))
        return
    if not found:
        click.echo(f"no adapters installed: the entry-point group `{GROUP}` is empty (reinstall catopt-dsl: pip install -e .)", err=True)
        return
    rows = [("NAME", "VERSION", "KIND", "API", "STATUS", "FROM")]
    for i in found:
        api = i.adapter.contract.api_version if i.adapter is not None else "?"
        rows.append((i.name, i.version, i.kind, api, i.status, i.distribution))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    for i in found:
        if i.message:
            click.echo(f"  {i.name}: {i.message}")


@adapters.command("show", epilog=EXAMPLES)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The contract (and devices) as one JSON object.")
@click.option("--probe", is_flag=True, help="Hardware adapters: measure each device's fp32 throughput now.")
def show(name: str, as_json: bool, probe: bool) -> None:
    """An adapter's contract, availability and (hardware) devices in canonical units."""
    from catopt_dsl.adapters.api import AdapterError, HardwareAdapter

    adapter = _get(name)
    c = adapter.contract
    avail = adapter.availability()
    devices: list[dict[str, Any]] = []
    device_error = ""
    if isinstance(adapter, HardwareAdapter) and avail.ok:
        try:
            for d in adapter.describe():
                d = adapter.probe(d) if probe else d
                devices.append({"descriptor": d.to_json(), "capacity": adapter.capacity(d).to_json()})
        except AdapterError as exc:
            device_error = str(exc)
    if as_json:
        out = {"contract": c.to_json(), "available": avail.ok, "reason": avail.reason}
        if isinstance(adapter, HardwareAdapter):
            out["devices"] = devices
        click.echo(json.dumps(out, sort_keys=True))
        return
    click.echo(f"{c.name} {c.version} ({c.kind} adapter, adapter API {c.api_version})")
    click.echo(f"  {c.summary}")
    click.echo(f"  platforms:   {', '.join(c.platforms)}")
    click.echo("  provides:    " + ", ".join(f"{q.name} [{q.unit}]" for q in c.quantities))
    click.echo(f"  requires:    {', '.join(c.requires) or 'nothing beyond catopt-dsl'}")
    if c.install:
        click.echo(f"  install:     {c.install}")
    if c.kind == "framework":
        promise = {"always": "every loss it serves is convex", "declared": "convex when the loss declares it (external_loss(convex=True))",
                   "never": "no convexity promise (ADMM is a heuristic)"}[c.convexity]
        click.echo(f"  convexity:   {promise}")
        click.echo("  kit samples: " + ", ".join(f"{k} = {v}" for k, v in c.samples))
    click.echo(f"  available:   {'yes' if avail.ok else 'no: ' + avail.reason}")
    for item in devices:
        d, cap = item["descriptor"], item["capacity"]
        compute = cap["compute"]["value"]
        rate = "unknown (run with --probe)" if compute is None else f"{compute:.3g} ncu ({d['peak_source']})"
        click.echo(f"  device {d['index']}: {d['name']}: {d['compute_units']} compute units, "
                   f"{cap['memory']['value']:.1f} GiB, {rate}")
    if device_error:
        click.echo(f"  devices:     {device_error}")


@adapters.command("verify", epilog=EXAMPLES)
@click.argument("name")
@click.option("--quick", is_flag=True, help="One rho per prox check and a shorter probe.")
@click.option("--json", "as_json", is_flag=True, help="The kit's report as one JSON object.")
def verify(name: str, quick: bool, as_json: bool) -> None:
    """Run the conformance kit against an installed adapter; exit 1 unless it conforms."""
    from catopt_dsl.adapters.kit import verify as run_kit

    report = run_kit(_get(name), quick=quick)
    if as_json:
        click.echo(json.dumps(report.to_json(), sort_keys=True))
    else:
        click.echo(report.render())
    sys.exit(0 if report.ok else 1)
