"""``catoptc demo fleet`` and ``catoptc demo hil``.

Exit codes as everywhere: 0 every check held, 1 a check failed (a result off the centralised
solve, a ledger that does not verify, a HIL run whose plan did not solve), 2 usage errors (an
output folder that holds someone else's files, a missing optional dependency).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["demo_group"]

#: a file the demos leave in their output folder, so a later run may replace what is there
MARKER = ".catoptc-demo"


def _prepare(out: Path) -> None:
    """Make ``out``; refuse a non-empty folder the demos did not write (nothing of the user's is lost)."""
    if out.exists() and not out.is_dir():
        raise click.UsageError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise click.UsageError(f"--out {out}: the folder holds files catoptc demo did not write; choose another")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by catoptc demo; a later run replaces this folder's report\n", encoding="utf-8")


@click.group(name="demo")
def demo_group() -> None:
    """Runnable demonstrations that write an HTML report."""


@demo_group.command(name="fleet")
@click.option("--backend", type=click.Choice(["distributed", "inprocess", "ray"]), default="distributed",
              show_default=True,
              help="distributed: the delta-sync protocol with every node in this process (faults injected); "
                   "ray: every node a Ray actor; inprocess: the reference ADMM without the protocol.")
@click.option("--hours", type=click.IntRange(1, 24), default=24, show_default=True, help="Simulated hours to run.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-fleet"),
              show_default=True, help="Folder for report.html, the hourly specs and the ledger.")
@click.option("--identity", "identity_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Sign the ledger with this key file (catoptc identity new); default: a fixed demo key.")
@click.option("--quiet", is_flag=True, help="No line per hour.")
def fleet_command(backend: str, hours: int, out: Path, identity_path: Path | None, quiet: bool) -> None:
    """A simulated cross-domain fleet re-planned every hour with PlanDeltas, warm, with faults.

    \b
    Example:
      catoptc demo fleet --hours 6 --out fleet-report
    """
    from catopt_dsl.demo.fleet import run_fleet

    identity = None
    if identity_path is not None:
        from catopt_dsl.identity.keys import Identity, IdentityError

        try:
            identity = Identity.load(identity_path)
        except IdentityError as exc:
            raise click.UsageError(f"--identity {identity_path}: {exc}") from None
    _prepare(out)
    try:
        from catopt_dsl.demo.report import write_fleet_report

        run = run_fleet(out, hours=hours, backend=backend, identity=identity,
                        progress=None if quiet else click.echo)
        report = write_fleet_report(run, out / "report.html")
    except ImportError as exc:  # ray or matplotlib missing
        click.echo(f"catoptc: error: {exc} (pip install 'catopt-dsl[plot,ray]')", err=True)
        sys.exit(2)
    except RuntimeError as exc:
        if "matplotlib" in str(exc) or "Ray" in str(exc):
            click.echo(f"catoptc: error: {exc}", err=True)
            sys.exit(2)
        raise
    n = sum(len(h.solves) for h in run.hours)
    ok = sum(1 for h in run.hours for s in h.solves if s.check)
    saved = sum((h.final.cold_iterations or 0) - h.final.iterations for h in run.hours
                if h.final.cold_iterations is not None)
    click.echo(f"{len(run.hours)} hours on {backend} in {run.seconds:.1f} s: {ok}/{n} centralised checks held, "
               f"warm starts saved {saved} iterations, ledger of {run.ledger_entries} entries "
               f"{'verified' if run.ledger_ok else 'DOES NOT VERIFY'}")
    click.echo(f"report: {report}")
    if not (run.all_checks and run.ledger_ok):
        sys.exit(1)


@demo_group.command(name="hil")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-hil"),
              show_default=True, help="Folder for report.html and report.json.")
@click.option("--window", "window", type=click.FloatRange(0.2, 600.0), default=3.0, show_default=True,
              help="Seconds of device time shared among the tenants, per device.")
@click.option("--quiet", is_flag=True, help="No line per tenant.")
def hil_command(out: Path, window: float, quiet: bool) -> None:
    """Hardware in the loop: measured device throughput as capacity, solved, then run and compared.

    \b
    Example:
      catoptc demo hil --out hil-report
    """
    _prepare(out)
    try:
        from catopt_dsl.demo.hil import run_hil, write_json
        from catopt_dsl.demo.report import write_hil_report
    except ImportError as exc:  # torch missing
        click.echo(f"catoptc: error: {exc} (the HIL demo runs torch: pip install 'catopt-dsl[ml,plot]')", err=True)
        sys.exit(2)
    try:
        run = run_hil(window_s=window, progress=None if quiet else click.echo)
        write_json(run, out / "report.json")
        report = write_hil_report(run, out / "report.html")
    except RuntimeError as exc:
        if "matplotlib" in str(exc):
            click.echo(f"catoptc: error: {exc}", err=True)
            sys.exit(2)
        raise
    for dev in run.devices:
        if dev.skipped:
            click.echo(f"{dev.platform}: skipped ({dev.skipped})")
        else:
            worst = max((abs(t.rel_error) for t in dev.tenants), default=0.0)
            click.echo(f"{dev.platform}: {dev.name}: capacity {dev.capacity_ncu:.4f} ncu (probed), plan {dev.status}, "
                       f"largest planned-vs-achieved error {100 * worst:.1f}%")
    click.echo(f"report: {report}")
    if not run.ok:
        sys.exit(1)
