"""`catoptc init`, `catoptc fmt` and `catoptc explain` (registered in catopt_dsl/cli.py)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click

from catopt_dsl.diagnostics import render_text, visible

_COLOR = click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour diagnostics: on a terminal (auto), always, or never.",
)


def _use_color(choice: str) -> bool:
    import os

    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stderr.isatty()


@click.command(name="init", short_help="Write a starter plan with its data.")
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
def init_command(folder: Path) -> None:
    """Write a starter plan (plan.cat and its data) into FOLDER (default: here).

    The plan checks, solves and compiles as it is: edit it from there. Existing files are never
    overwritten; if any of the starter's files exists, nothing is written.
    """
    from catopt_dsl.authoring.starter import Refused, write_starter

    try:
        written = write_starter(folder)
    except Refused as exc:
        names = ", ".join(visible(str(folder / rel)) for rel in exc.existing)
        click.echo(f"catoptc: error: {names} already exist{'s' if len(exc.existing) == 1 else ''}; init overwrites nothing (nothing was written)", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"catoptc: error: cannot write the starter plan into {visible(str(folder))}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    for p in written:
        click.echo(f"wrote {visible(str(p))}", err=True)
    plan = visible(str(folder / "plan.cat"))
    click.echo(f"next: catoptc check {plan} && catoptc solve {plan}", err=True)


@click.command(name="fmt", short_help="Format specs canonically (--check for CI).")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 and name each file that formatting would change (for CI).")
@_COLOR
def fmt_command(files: tuple[Path, ...], check: bool, color: str) -> None:
    """Format .cat specs in place, canonically (FILE may be a folder, or - for stdin to stdout).

    One statement per line, four-space indents, normalised spacing, comments kept; running it
    twice changes nothing. A file that does not parse is reported and left as it is; every file
    is replaced atomically, so a failure never leaves a half-written spec.
    """
    from catopt_dsl.authoring.fmt import Outcome, format_file, format_text, spec_paths
    from catopt_dsl.syntax.format import FormatError

    if Path("-") in files:
        if len(files) > 1:
            raise click.UsageError("`-` (standard input) cannot be combined with files")
        text = sys.stdin.read()
        try:
            new, diags = format_text(text, "<stdin>")
        except FormatError as exc:
            click.echo(f"catoptc: internal error: {exc}", err=True)
            sys.exit(3)
        if new is None:
            from catopt_dsl.diagnostics import SourceMap

            sources = SourceMap()
            sources.add("<stdin>", text)
            click.echo(render_text(diags, sources, color=_use_color(color)), err=True, color=_use_color(color))
            sys.exit(1)
        if check:
            sys.exit(0 if new == text else 1)
        click.echo(new, nl=False)
        return
    counts: Counter[Outcome] = Counter()
    paths = list(spec_paths(files))
    if not paths:
        raise click.UsageError("no .cat files found in " + ", ".join(visible(str(f)) for f in files))
    for path in paths:
        shown = str(path)
        r = format_file(path, shown, check)
        counts[r.outcome] += 1
        if r.outcome is Outcome.CHANGED:
            click.echo(f"{'would reformat' if check else 'reformatted'} {visible(shown)}", err=True)
        elif r.outcome is Outcome.INVALID:
            if r.diagnostics:
                click.echo(render_text(r.diagnostics, r.sources, color=_use_color(color)), err=True, color=_use_color(color))
            if r.message:
                click.echo(f"catoptc: error: {visible(r.message)}", err=True)
            click.echo(f"cannot format {visible(shown)}", err=True)
        elif r.outcome is Outcome.BUG:
            click.echo(f"catoptc: internal error: {visible(r.message)} (the file was left as it was; please report it)", err=True)
    click.echo(_summary(counts, check), err=True)
    if counts[Outcome.BUG]:
        sys.exit(3)
    if counts[Outcome.INVALID] or (check and counts[Outcome.CHANGED]):
        sys.exit(1)


def _summary(counts: Counter, check: bool) -> str:
    from catopt_dsl.authoring.fmt import Outcome

    def n(k: int, what: str) -> str:
        return f"{k} file{'s' if k != 1 else ''} {what}"

    parts = []
    if counts[Outcome.CHANGED]:
        parts.append(n(counts[Outcome.CHANGED], "would be reformatted" if check else "reformatted"))
    if counts[Outcome.UNCHANGED]:
        parts.append(n(counts[Outcome.UNCHANGED], "already formatted"))
    failed = counts[Outcome.INVALID] + counts[Outcome.BUG]
    if failed:
        parts.append(n(failed, "could not be formatted"))
    return ", ".join(parts)


@click.command(name="explain", short_help="Explain a diagnostic code, e.g. E0101.")
@click.argument("code")
def explain_command(code: str) -> None:
    """Print what diagnostic CODE (such as E0101) means, with an example and the fix.

    The text is the code's section of docs/errors.md, which ships with catoptc.
    """
    from catopt_dsl.authoring.explain import explain, known_codes, normalise

    entry = explain(code)
    if entry is None:
        key = normalise(code)
        if key is None:
            raise click.BadParameter(f"`{code}` is not an error code; codes look like E0101", param_hint="CODE")
        raise click.BadParameter(f"no code {key}; catoptc's codes are " + ", ".join(known_codes()), param_hint="CODE")
    click.echo(entry.text(), nl=False)
