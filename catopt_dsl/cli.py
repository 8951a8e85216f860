"""`catoptc`: the command-line interface.

Exit codes: 0 clean, 1 errors in the spec (or a solve that did not reach `optimal`), 2 usage errors,
3 an internal error (a bug in catoptc: the message asks for a report, never a raw traceback).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from catopt_dsl import __version__
from catopt_dsl.adapters.cli import adapters as adapters_group
from catopt_dsl.diagnostics import render_json, render_text, visible
from catopt_dsl.sync.cli_options import run_options

EXAMPLES = """
\b
Examples:
  catoptc check examples/gpu_fleet.cat
  catoptc check --format json examples/*.cat
  catoptc solve examples/gpu_fleet.cat --json
  catoptc solve examples/federated_logreg.cat --centralized
  catoptc solve examples/plan_deltas.cat --delta tenant_d_joins
  catoptc compile examples/gpu_fleet.cat --target all --out build/gpu_fleet
"""


def _use_color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stderr.isatty()


@click.group(
    help="catoptc: compile and solve distributed optimisation plans written in .cat specs.\n" + EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
)
@click.version_option(__version__, prog_name="catoptc")
def cli() -> None:
    pass


_allow = click.option(
    "--allow-path",
    "allow_paths",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Let load() read data from this folder too (by default only the spec's own folder).",
)
_color = click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour diagnostics: on a terminal (auto), always, or never (NO_COLOR=1 also turns it off).",
)


def _report(analyses: Sequence[Any], fmt: str, color: bool) -> int:
    from catopt_dsl.diagnostics import SourceMap

    errors = 0
    if fmt == "json":
        diags = [d for a in analyses for d in a.diagnostics]
        click.echo(render_json(diags))
        return sum(1 for a in analyses if not a.ok)
    for a in analyses:
        if a.diagnostics:
            click.echo(render_text(a.diagnostics, a.sources if a.sources else SourceMap(), color=color), err=True, color=color)
        if not a.ok:
            errors += 1
    return errors


@cli.command(epilog=EXAMPLES)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Diagnostics as rustc-style text on stderr, or as a JSON array on stdout.")
@click.option("--registry", default=None, metavar="PATH|URL", help="Also check the schemas morphisms carry against this schema registry.")
@click.option("--explain", is_flag=True, help="Also print each object's solver class, the method its x-update gets, and why.")
@_allow
@_color
def check(files: tuple[Path, ...], fmt: str, registry: str | None, explain: bool, allow_paths: tuple[str, ...], color: str) -> None:
    """Parse and type-check specs; report every problem found."""
    if explain and fmt == "json":
        raise click.UsageError("--explain prints text: use it with --format text")
    from catopt_dsl.compile import analyze

    analyses = [analyze(f, allow_paths) for f in files]
    if registry is not None:
        from catopt_dsl.registry.cli import check_with_registry

        check_with_registry(analyses, registry)
    failed = _report(analyses, fmt, _use_color(color))
    if fmt == "text":
        for a in analyses:
            if a.ok:
                click.echo(f"{visible(a.file)}: ok", err=True)
                for o in a.plan.objects if a.plan is not None else ():
                    if o.external is not None:  # what an adapter vouches for (docs/language.md)
                        e = o.external
                        click.echo(f"{visible(a.file)}: {o.name}: `{e.reference}` via {e.adapter} {e.adapter_version}: {e.convexity}", err=True)
    if explain:
        from catopt_dsl.solver.explain import explain as explain_plan

        for a in analyses:
            if a.plan is not None:
                for line in explain_plan(a.plan):
                    click.echo(f"{visible(a.file)}: {line}")
    sys.exit(1 if failed else 0)


def _load_or_exit(file: Path, allow_paths: Sequence[str], color: str, as_json: bool = False) -> Any:
    """The checked plan, or exit 1 after the diagnostics (with ``as_json``, also one JSON object on
    stdout: ``{"status": "error", "diagnostics": [...]}``, so a script reading stdout sees why)."""
    from catopt_dsl.compile import analyze

    a = analyze(file, allow_paths)
    if as_json and a.plan is None:
        doc = {"status": "error", "diagnostics": [d.to_json() for d in a.diagnostics]}
        if not a.diagnostics:
            doc["message"] = f"`{a.file}` is a schema library (no LocalProblem): import it from a plan"
        click.echo(json.dumps(doc, sort_keys=True))
    if a.diagnostics:
        click.echo(render_text(a.diagnostics, a.sources, color=_use_color(color)), err=True, color=_use_color(color))
    if a.plan is None:
        if a.ok:  # it checks, but declares no LocalProblem: a library of schemas to import
            click.echo(f"catoptc: error: `{a.file}` is a schema library (no LocalProblem): import it from a plan", err=True)
        sys.exit(1)
    return a.plan


@cli.command(epilog=EXAMPLES)
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout (the public result contract).")
@click.option("--centralized", is_flag=True, help="Glue the whole plan into one CVXPY problem instead of running ADMM.")
@click.option(
    "--backend",
    type=click.Choice(["inprocess", "distributed", "ray", "centralized", "native"]),
    default="inprocess",
    show_default=True,
    help="Where the solve runs (catopt_dsl.runtime.backends): ADMM in this process, over the delta-sync "
    "protocol in this process, on Ray, as one centralised CVXPY problem, or with the plan's generated C++ "
    "solver (QP objects only; compiled once, cached under $CATOPT_CACHE or ~/.cache/catoptc/native).",
)
@click.option("--native-lang", type=click.Choice(["cpp", "rust"]), default=None,
              help="With --backend native: the generated solver's language (default cpp; rust builds the "
              "crate's C API as a cdylib with cargo).")
@click.option("--address", default=None, help="Ray cluster address (with --backend ray); default: start a local Ray.")
@click.option("--max-iter", type=click.IntRange(1), default=10_000, show_default=True, help="ADMM iterations before giving up.")
@click.option("--eps-abs", type=click.FloatRange(min=0.0, min_open=True), default=1e-5, show_default=True, help="Absolute tolerance of the residuals.")
@click.option("--eps-rel", type=click.FloatRange(min=0.0, min_open=True), default=1e-5, show_default=True, help="Relative tolerance of the residuals.")
@click.option("--rho", type=click.FloatRange(min=0.0, min_open=True), default=1.0, show_default=True, help="ADMM penalty parameter to start from.")
@click.option("--alpha", type=click.FloatRange(min=0.0, max=2.0, min_open=True, max_open=True), default=1.6, show_default=True, help="Over-relaxation factor, in (0, 2).")
@click.option("--adaptive-rho/--no-adaptive-rho", default=True, show_default=True,
              help="Adapt rho while solving (the local objectives' curvature per link, else residual balancing); "
              "off: --rho stays fixed.")
@click.option("--delta", "delta", default=None, help="Solve, then apply this PlanDelta and re-solve warm-started.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write residual, objective and rho histories to an image (.png, .svg or .pdf).")
@click.option("--all", "show_all", is_flag=True, help="List every object's values (default: the first 10 of each group).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--as", "as_did", default=None, metavar="DID",
              help="Report only this tenant's objects and the shared variables (owners from the spec or --owners).")
@click.option("--owners", "owners_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help='Owner bindings as JSON: {"owners": {"<object or family>": "did:key:..."}}; they add to the '
              "spec's `owner` clauses, never contradict them.")
@click.option("--keys", "key_paths", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Tenants' key files, or folders of them (*.key, *.pem), for a signed distributed or Ray run: "
              "each node signs with its owner's key. Required there when the spec names owners.")
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Record the solve (spec and data hashes, options, status, result hash) in this ledger.")
@click.option("--identity", "identity_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Key file whose DID signs the --ledger entry and, in a signed run, the coordinator's frames.")
@run_options
@_allow
@_color
def solve(
    file: Path,
    as_json: bool,
    centralized: bool,
    backend: str,
    native_lang: str | None,
    address: str | None,
    max_iter: int,
    eps_abs: float,
    eps_rel: float,
    rho: float,
    alpha: float,
    adaptive_rho: bool,
    delta: str | None,
    plot: Path | None,
    show_all: bool,
    quiet: bool,
    as_did: str | None,
    owners_path: Path | None,
    key_paths: tuple[Path, ...],
    ledger_path: Path | None,
    identity_path: Path | None,
    allow_paths: tuple[str, ...],
    color: str,
    **run: Any,
) -> None:
    """Solve a plan with the reference ADMM solver (or centrally) and report the result.

    Distributed and Ray runs also take the protocol's options (quorum, staleness, timeouts,
    --min-members, checkpoints, --fault, logging, --metrics): see docs/protocol.md.
    """
    if centralized:
        if backend not in ("inprocess", "centralized"):
            raise click.UsageError(f"--centralized and --backend {backend} disagree: pick one")
        backend = "centralized"
    centralized = backend == "centralized"
    if address is not None and backend != "ray":
        raise click.UsageError("--address names a Ray cluster: it needs --backend ray")
    if native_lang is not None and backend != "native":
        raise click.UsageError("--native-lang picks the language of --backend native: it needs --backend native")
    if plot is not None and centralized:
        raise click.UsageError("--plot draws ADMM's iteration history; a --centralized solve has none")
    if plot is not None:
        _check_plot_path(plot)
    if ledger_path is not None and identity_path is None:
        raise click.UsageError("--ledger needs --identity: the entry is signed by the identity's DID")
    protocol = backend in ("distributed", "ray")
    if key_paths and not protocol:
        raise click.UsageError(f"--keys signs the frames of a distributed or Ray run; --backend {backend} sends none")
    from catopt_dsl.sync.cli_options import build_run_options, configure_logging

    click.get_current_context().call_on_close(configure_logging(run.pop("log_format"), run.pop("log_level")))
    metrics_path = run.get("metrics_path")
    interactive = not quiet and sys.stderr.isatty()
    phase = (lambda text: click.echo(f"catoptc: {text}", err=True)) if interactive else _log_phase
    from catopt_dsl.runtime.backends import RunOptions

    run_opts = RunOptions(**build_run_options(run, backend, phase), native_lang=native_lang or "cpp")
    if delta is not None and (run_opts.resume is not None or run_opts.checkpoint is not None):
        raise click.UsageError("--delta re-solves warm-started: it does not combine with --checkpoint/--resume")
    plan = _load_or_exit(file, allow_paths, color, as_json=as_json)
    if run_opts.resume is not None and run_opts.resume.spec_hash != plan.spec_hash:
        raise click.UsageError(f"--resume {run['resume']}: written for another plan (`{run_opts.resume.plan}`)")
    if run_opts.min_members > len(plan.objects):
        raise click.UsageError(f"--min-members {run_opts.min_members}: the plan has {len(plan.objects)} objects")
    if centralized and any(o.external is not None for o in plan.objects):
        raise click.UsageError("a plan with external losses needs an ADMM backend: CVXPY cannot see a framework's loss")
    owners = _owners(plan, owners_path)
    tenant = _tenant(plan, owners, owners_path, as_did)
    signed = protocol and (bool(key_paths) or any(o.owner is not None for o in plan.objects))
    if identity_path is not None and ledger_path is None and not signed:
        raise click.UsageError("--identity signs a --ledger entry or a signed run's coordinator frames: this solve has neither")
    signer = _signer(identity_path)
    delta_run = RunOptions(native_lang=run_opts.native_lang) if backend == "native" else None
    if signed:
        keys = _keys(key_paths)
        run_opts = dataclasses.replace(run_opts, auth=_run_auth(plan, keys, signer, owners))
        if delta is not None and delta in {d.name for d in plan.deltas}:
            changed = plan.delta(delta).result
            # the changed plan's own owners (a delta may add owned objects); a key ring still fills in
            ring = None if any(o.owner is not None for o in plan.objects) else owners
            delta_run = RunOptions(auth=_run_auth(changed, keys, run_opts.auth.coordinator, ring))
    from catopt_dsl.solver import SolveOptions

    options = SolveOptions(
        max_iter=max_iter, eps_abs=eps_abs, eps_rel=eps_rel, rho=rho, alpha=alpha, adaptive_rho=adaptive_rho
    )
    if delta is not None and delta not in {d.name for d in plan.deltas}:
        known = ", ".join(d.name for d in plan.deltas) or "none"
        raise click.UsageError(f"unknown PlanDelta `{delta}` (this plan declares: {known})")
    progress = None
    # Progress goes to stderr, and only to a terminal: piped output and --json stay clean.
    if interactive and not centralized:
        from catopt_dsl.solver.progress import ProgressPrinter

        progress = ProgressPrinter(every=10)
    from catopt_dsl.sync.cli_options import stdout_to_stderr

    caught: list[warnings.WarningMessage] = []
    try:
        # While the solve runs, stdout is stderr (a library's prints cannot break --json), and
        # Python warnings are collected: each is printed once, with the result's own warnings.
        with stdout_to_stderr(as_json), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            result = _run(plan, options, centralized, backend, address, progress, run_opts)
            if delta is not None:
                from catopt_dsl.runtime.deltas import apply_delta

                first = result
                result = apply_delta(plan, delta, first, options=options, backend=backend, address=address,
                                     centralized=centralized, run=delta_run)
    except KeyboardInterrupt:
        click.echo("catoptc: interrupted", err=True)
        sys.exit(130)
    except _user_errors() as exc:
        click.echo(f"catoptc: error: {exc}", err=True)
        sys.exit(2)
    full = result  # a ledger record covers the whole result, whoever looks at it
    if tenant is not None:
        result = tenant[0].view(result, tenant[1])
    plot_failed = False
    if plot is not None:
        from catopt_dsl.plotting import plot_history

        try:
            plot_history(result, plot)
        except (RuntimeError, ValueError, OSError) as exc:  # matplotlib missing, no history, unwritable path
            click.echo(f"catoptc: error: cannot write the plot: {exc}", err=True)
            plot_failed = True
    shown = set()
    for warning in [*result.warnings, *(str(w.message) for w in caught)]:
        if warning not in shown:  # one line per event
            shown.add(warning)
            click.echo(f"warning: {warning}", err=True)
    if metrics_path is not None:
        from catopt_dsl.sync.cli_options import write_metrics

        problem = write_metrics(metrics_path, result)
        if problem is not None:
            click.echo(f"catoptc: cannot write the metrics: {problem}", err=True)
    if as_json:
        # to_json orders keys itself (family members by index: site[2] before site[10]) and turns
        # non-finite numbers into null; allow_nan=False guarantees the JSON is valid
        click.echo(json.dumps(result.to_json(), allow_nan=False))
    elif delta is not None:
        click.echo("== the plan as declared ==")
        _print_human(first, show_all)
        click.echo(f"\n== after PlanDelta `{delta}` (warm-started from the solve above) ==")
        _print_human(result, show_all)
    else:
        _print_human(result, show_all)
    if ledger_path is not None:  # after the output: a ledger that cannot be written loses no result
        _record(ledger_path, signer, file, plan, options, full, centralized, backend, delta, allow_paths)
    sys.exit(0 if result.status == "optimal" and not plot_failed else 1)


#: the image formats --plot writes (matplotlib's Agg, SVG and PDF back ends)
PLOT_FORMATS = (".png", ".svg", ".pdf")


def _check_plot_path(plot: Path) -> None:
    """Refuse an unsupported format or a missing folder before solving, not after (exit 2)."""
    if plot.suffix.lower() not in PLOT_FORMATS:
        raise click.UsageError(
            f"--plot {plot}: cannot write a `{plot.suffix or 'suffix-less'}` image; use one of {', '.join(PLOT_FORMATS)}"
        )
    folder = plot.parent if str(plot.parent) else Path(".")
    if not folder.is_dir():
        raise click.UsageError(f"--plot {plot}: the folder `{folder}` does not exist")
    if not os.access(folder, os.W_OK):
        raise click.UsageError(f"--plot {plot}: the folder `{folder}` is not writable")


def _input_error(message: str) -> NoReturn:
    click.echo(f"catoptc: error: {message}", err=True)
    sys.exit(1)


def _owners(plan: Any, owners_path: Path | None) -> Any:
    """The plan's owners: the spec's `owner` clauses, with a --owners key ring's bindings added
    (one contradicting the spec, or naming nothing in the plan, is an input error); None if neither."""
    if owners_path is None and not any(o.owner is not None for o in plan.objects):
        return None
    from catopt_dsl.identity import Owners, OwnersError

    spec = Owners.from_plan(plan)
    if owners_path is None:
        return spec
    try:
        ring = Owners.load(owners_path)
        problems = ring.check(o.name for o in plan.objects)
        if problems:
            _input_error(f"{owners_path}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        return ring if spec is None else spec.merged(ring, str(owners_path))
    except OwnersError as exc:
        _input_error(str(exc))


def _tenant(plan: Any, owners: Any, owners_path: Path | None, did: str | None) -> tuple[Any, str] | None:
    """(owners, did) for `solve --as`, checked against the plan; None without --as."""
    if did is None:
        return None
    if owners is None:
        raise click.UsageError("--as needs owners: name them in the spec (`owner \"did:key:...\"`) or pass --owners FILE")
    from catopt_dsl.identity import validate_did

    why = validate_did(did)
    if why is not None:
        raise click.UsageError(f"--as {did}: {why}")
    if not owners.objects_of(did, (o.name for o in plan.objects)):
        _input_error(f"{did} owns no object of this plan (see {owners_path or 'the spec'})")
    return owners, did


def _keys(paths: Sequence[Path]) -> list[Any]:
    """The tenants' keys for a signed run (--keys): files, or folders of *.key / *.pem files."""
    if not paths:
        raise click.UsageError(
            "the plan names owners, so a distributed or Ray run is signed: pass the owners' keys with "
            "--keys DIR (a folder of key files) or --keys FILE ... (catoptc identity new makes them)"
        )
    from catopt_dsl.identity import IdentityError, load_keys

    try:
        return load_keys(paths)
    except IdentityError as exc:
        _input_error(str(exc))


def _run_auth(plan: Any, keys: Sequence[Any], coordinator: Any, owners: Any) -> Any:
    """The RunAuth of a signed run; an owner without a key (or no owners at all) is a usage error."""
    from catopt_dsl.sync.auth import AuthConfigError, RunAuth

    try:
        return RunAuth.for_plan(plan, keys, coordinator, owners)
    except AuthConfigError as exc:
        raise click.UsageError(f"signed run: {exc}") from None


def _signer(identity_path: Path | None) -> Any:
    if identity_path is None:
        return None
    from catopt_dsl.identity import Identity, IdentityError

    try:
        return Identity.load(identity_path)
    except IdentityError as exc:
        _input_error(str(exc))


def _record(ledger_path: Path, signer: Any, file: Path, plan: Any, options: Any, result: Any,
            centralized: bool, backend: str, delta: str | None, allow_paths: Sequence[str]) -> None:
    """Append the solve to the ledger (the whole result, not a tenant's view)."""
    from catopt_dsl.ledger import Ledger, LedgerError
    from catopt_dsl.ledger.solve_record import solve_body

    body = solve_body(file, plan, options, result, centralized=centralized, backend=backend,
                      deltas=[delta] if delta else [], allow_paths=allow_paths, version=__version__)
    try:
        led = Ledger.open(ledger_path, create=True)
        se = led.append(signer, "solve.recorded", body)
    except LedgerError as exc:
        _input_error(str(exc))
    for torn, aside in led.recovered:
        click.echo(f"catoptc: warning: {ledger_path}: {torn.describe()}; moved to {aside}", err=True)
    click.echo(f"recorded as entry {se.entry.index} of {ledger_path} (result {body['result']['sha256'][:16]}...)", err=True)


def _run(plan: Any, options: Any, centralized: bool, backend: str, address: str | None, progress: Any, run: Any) -> Any:
    from catopt_dsl.runtime.backends import solve_with

    return solve_with(plan, options, backend=backend, address=address, progress=progress, run=run)


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors of the user's environment during a solve (exit 2, one line): an unreachable cluster,
    an unwritable checkpoint, a fault spec naming no object, a plan the native backend cannot solve
    (an object that is not a QP) or build (no C++ compiler)."""
    from catopt_dsl.runtime.backends import ClusterConnectionError
    from catopt_dsl.runtime.native_backend import NativeBuildError, NativeUnsupported
    from catopt_dsl.sync.checkpoint import CheckpointError
    from catopt_dsl.sync.faults import FaultSpecError

    return (ClusterConnectionError, CheckpointError, FaultSpecError, PermissionError, IsADirectoryError,
            FileNotFoundError, NativeUnsupported, NativeBuildError)


def _log_phase(text: str) -> None:
    import logging

    logging.getLogger("catopt_dsl.ray").info(text, extra={"event": "phase"})


def _print_human(result: Any, show_all: bool = False) -> None:
    click.echo(f"status:      {result.status}")
    if result.message:
        click.echo(f"message:     {result.message}")
    if result.objective is not None:
        # One convention everywhere (README, docs/language.md): a `maximize` objective counts negated.
        click.echo(f"objective:   {result.objective:.8g} (minimisation form)")
    if result.iterations is not None:
        click.echo(f"iterations:  {result.iterations}")
    if result.primal_residual is not None:
        click.echo(f"residuals:   primal {result.primal_residual:.2e}, dual {result.dual_residual:.2e}")
    click.echo(f"time:        {result.solve_time_s:.3f} s")
    import numpy as np

    limit = None if show_all else 10
    for group, values in (("shared", result.shared), ("objects", result.objects)):
        shown = list(values.items())
        for name, vars_ in shown[:limit]:
            for var, value in vars_.items():
                arr = np.asarray(value, dtype=np.float64)
                if arr.ndim == 0:  # a scalar var prints as a number, not a one-element list
                    click.echo(f"  {name}.{var} = {round(float(arr), 6)}")
                    continue
                flat = [round(float(v), 6) for v in arr.reshape(-1)[: None if show_all else 8]]
                more = " ..." if not show_all and arr.size > 8 else ""
                click.echo(f"  {name}.{var} = {flat}{more}")
        if limit is not None and len(shown) > limit:
            click.echo(f"  ... and {len(shown) - limit} more {group} (--all lists every one, --json gives them all)")


TARGETS = ("python", "rust", "cpp")
MARKER = ".catoptc-generated"


@cli.command(name="compile", epilog=EXAMPLES)
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--target", type=click.Choice([*TARGETS, "all"]), default="python", show_default=True,
              help="The language to emit, or all three.")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder; each target goes into OUT/<target>/.")
@click.option("--force", is_flag=True, help="Replace an OUT/<target>/ folder that catoptc did not write.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if OUT/<target>/ differs from what would be written "
              "(files added, missing or changed), e.g. generated code pinned in a repository.")
@_allow
@_color
def compile_(file: Path, target: str, out: Path, force: bool, check: bool, allow_paths: tuple[str, ...], color: str) -> None:
    """Emit Python bindings, a Rust crate and/or a C++ library for a spec.

    Every target is generated into a temporary folder next to OUT/<target>/ and swapped in only
    once all of them succeeded: a failed compile leaves the previous output as it was.
    """
    targets = TARGETS if target == "all" else (target,)
    if check:
        _check_compiled(file, targets, out, allow_paths, color)
        return
    _check_out(out, targets, force)
    plan = _load_or_exit(file, allow_paths, color)
    external = [o.name for o in plan.objects if o.external is not None]
    if external:  # the generated code would drop the tenant's loss: refuse rather than emit a wrong plan
        click.echo(f"catoptc: error: {', '.join(external)} have external losses; code generation does not carry "
                   "a tenant's framework code yet (solve the plan with `catoptc solve`)", err=True)
        sys.exit(1)
    from catopt_dsl.backends.emit import emit_target

    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".catoptc-staging-", dir=out))
    except OSError as exc:
        raise click.UsageError(f"cannot create the output folder {visible(str(out))}: {exc.strerror or exc}") from None
    try:
        written = {}
        for t in targets:
            try:
                written[t] = emit_target(t, plan, staging / t)
            except OSError as exc:
                click.echo(f"catoptc: cannot write the {t} output: {visible(exc.strerror or str(exc))}", err=True)
                sys.exit(1)
        for t in targets:
            _swap_in(staging / t, out / t)
            click.echo(f"{t}: wrote {len(written[t])} files under {visible(str(out / t))}", err=True)
        if {"rust", "cpp"} & set(targets):
            from catopt_dsl.backends.native import needs_local_solver

            missing = needs_local_solver(plan)
            if missing:
                names = ", ".join(f"`{visible(n)}`" for n in missing)
                click.echo(f"note: not QPs, so the native code has no solver for {names}: give each a LocalSolver "
                           "(docs/codegen.md)", err=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_compiled(file: Path, targets: Sequence[str], out: Path, allow_paths: Sequence[str], color: str) -> None:
    """``compile --check``: emit into a temporary folder and compare with OUT/<target>/ (file set and
    bytes; build folders such as ``target/`` or ``build/`` that catoptc never writes are ignored)."""
    plan = _load_or_exit(file, allow_paths, color)
    from catopt_dsl.backends.emit import emit_target

    differ: list[str] = []
    with tempfile.TemporaryDirectory(prefix="catoptc-check-") as tmp:
        for t in targets:
            fresh = Path(tmp) / t
            emit_target(t, plan, fresh)
            want = {p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file()}
            dest = out / t
            have = set()
            if dest.is_dir():
                tops = {rel.split("/", 1)[0] for rel in want}
                have = {p.relative_to(dest).as_posix() for p in dest.rglob("*")
                        if p.is_file() and p.relative_to(dest).parts[0] in tops}
            for rel in sorted(want | have):
                label = visible(str(dest / rel))
                if rel not in have:
                    differ.append(f"missing: {label}")
                elif rel not in want:
                    differ.append(f"not generated: {label}")
                elif rel != MARKER and (dest / rel).read_bytes() != (fresh / rel).read_bytes():
                    differ.append(f"differs: {label}")
    for line in differ:
        click.echo(line, err=True)
    if differ:
        click.echo(f"catoptc: {len(differ)} file(s) differ from `catoptc compile {visible(str(file))}`; rerun it without --check", err=True)
        sys.exit(1)
    click.echo(f"{', '.join(targets)}: up to date under {visible(str(out))}", err=True)


def _check_out(out: Path, targets: Sequence[str], force: bool) -> None:
    """Refuse an --out (or OUT/<target>) that is a file, a symbolic link or a folder the user wrote."""
    shown = visible(str(out))
    try:
        if out.is_symlink():
            raise click.UsageError(f"--out {shown} is a symbolic link; give the folder it points to")
        if out.exists() and not out.is_dir():
            raise click.UsageError(f"--out {shown} is a file, not a folder")
        for t in targets:
            dest = out / t
            if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
                raise click.UsageError(f"{visible(str(dest))} is not a folder catoptc wrote; refusing to replace it")
            if dest.exists() and not (dest / MARKER).exists() and any(dest.iterdir()) and not force:
                raise click.UsageError(
                    f"{visible(str(dest))} exists and was not written by catoptc; refusing to overwrite it (pass --force to replace it)"
                )
    except OSError as exc:  # a name too long, a folder we may not list
        raise click.UsageError(f"cannot use --out {shown}: {exc.strerror or exc}") from None


def _swap_in(new: Path, dest: Path) -> None:
    """Replace ``dest`` by ``new`` (same file system): two renames, the old folder removed last."""
    old = None
    if dest.exists():
        old = dest.with_name(f".catoptc-old-{dest.name}-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(dest, old)
    try:
        os.rename(new, dest)
    except OSError:
        if old is not None:
            os.rename(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# Command groups that live with their packages (each imports its heavy dependencies lazily).
from catopt_dsl.authoring.cli import explain_command, fmt_command, init_command  # noqa: E402  (light: click only)
from catopt_dsl.identity.cli import identity as _identity_commands  # noqa: E402
from catopt_dsl.ledger.cli import ledger as _ledger_commands  # noqa: E402
from catopt_dsl.registry.cli import registry_group, schema_group  # noqa: E402  (light: click only)

cli.add_command(schema_group)
cli.add_command(registry_group)
cli.add_command(_identity_commands)
cli.add_command(_ledger_commands)
cli.add_command(adapters_group)
cli.add_command(init_command)
cli.add_command(fmt_command)
cli.add_command(explain_command)
cli.add_command(__import__("catopt_dsl.demo.cli", fromlist=["demo_group"]).demo_group)  # light: click only

@cli.command(epilog=EXAMPLES)
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the diagram: .svg, .png or .dot (the format follows the suffix).")
@_allow
@_color
def graph(file: Path, out: Path, allow_paths: tuple[str, ...], color: str) -> None:
    """Draw the plan: objects by platform, morphisms, limits and the colimit (Graphviz)."""
    plan = _load_or_exit(file, allow_paths, color)
    from catopt_dsl.backends.graph import GraphError, render

    try:
        written, notice = render(plan, out)
    except GraphError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        click.echo(f"catoptc: error: cannot write {out}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    if notice:
        click.echo(f"catoptc: {notice}", err=True)
    click.echo(f"graph: wrote {written}", err=True)


# `main` is the click group (what tests drive through CliRunner); `run` is the console script.
main = cli


def run(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: no Python traceback ever reaches the user."""
    try:
        # Not click's standalone mode: it turns Ctrl-C into "Aborted!" and exit 1; here it is 130.
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="catoptc", standalone_mode=False)
    except SystemExit:
        raise
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("catoptc: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # `catoptc ... | head`: the reader left; as click's standalone mode does
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # the interpreter's final flush goes nowhere
        sys.exit(1)
    except Exception as exc:  # pragma: no cover - a bug in catoptc, reported without a traceback
        click.echo(
            f"catoptc: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in catoptc; please report it with the spec that triggered it "
            "(set CATOPTC_TRACEBACK=1 to see the traceback).",
            err=True,
        )
        if os.environ.get("CATOPTC_TRACEBACK"):
            raise
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    run()
