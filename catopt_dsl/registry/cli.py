"""``catoptc schema ...`` and ``catoptc registry ...``: the registry from the command line.

Where the registry is: ``--registry PATH|URL`` (an SQLite file, a ``postgresql://`` URL or the
``http://`` URL of ``catoptc registry serve``), else ``$CATOPT_REGISTRY``, else
``catopt-registry.db`` beside the spec for commands that take one (``schema register``,
``schema check``) and in the current folder for the others. Commands that only read never create
a registry. Exit codes as everywhere: 0 ok, 1 a schema or contract the registry refuses (or a
registry error), 2 usage errors (including a registry that cannot be found or reached).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from catopt_dsl.diagnostics import Diagnostic, Severity, SourceMap, render_text

F = TypeVar("F", bound=Callable[..., Any])

_registry_opt = click.option(
    "--registry",
    "target",
    default=None,
    metavar="PATH|URL",
    help="SQLite file, postgresql:// URL or http:// URL of a registry server "
    "(default: $CATOPT_REGISTRY, else catopt-registry.db beside the spec or in the current folder).",
)


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"catoptc: error: {message}", err=True)
    sys.exit(code)


def _guard(fn: F) -> F:
    """Registry errors become one line and an exit status, never a traceback."""
    import functools

    from catopt_dsl.registry.errors import RegistryError, RegistryUnavailable

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RegistryUnavailable as exc:
            _fail(exc.message, 2)
        except RegistryError as exc:
            _fail(exc.message, 1)

    return wrapper  # type: ignore[return-value]


def _open(target: str | None, spec: Path | None = None, create: bool = False) -> Any:
    from catopt_dsl.registry.registry import default_registry_path, open_registry

    return open_registry(target or default_registry_path(spec), create=create)


def _version(text: str) -> Any:
    if text == "latest":
        return "latest"
    if text.lstrip("v").isdigit():
        return int(text.lstrip("v"))
    raise click.BadParameter(f"{text!r} is not a version (a number, vN, or `latest`)")


def _field_spans(found: Any, schema: Any) -> Callable[[str], Any]:
    """Where each field of ``schema`` is declared in the spec ``found`` came from."""
    return lambda field: found.span(schema.name, schema.version, field)


def _echo_diags(diags: list[Diagnostic], sources: SourceMap | None = None) -> None:
    if diags:
        click.echo(render_text(diags, sources or SourceMap(), color=False), err=True)


def check_with_registry(analyses: list[Any], target: str) -> None:
    """The `catoptc check --registry` hook: registry diagnostics go into each analysis's sink."""
    from catopt_dsl.registry.errors import RegistryError, RegistryUnavailable
    from catopt_dsl.registry.plancheck import check_analyses

    try:
        check_analyses(analyses, target)
    except RegistryUnavailable as exc:
        _fail(exc.message, 2)
    except RegistryError as exc:
        _fail(exc.message, 1)


# ---------------------------------------------------------------------------------------------
# catoptc schema
# ---------------------------------------------------------------------------------------------


@click.group(name="schema")
def schema_group() -> None:
    """Register, check and inspect schemas in a schema registry (docs/registry.md)."""


@schema_group.command(name="register")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_registry_opt
@_guard
def schema_register(files: tuple[Path, ...], target: str | None) -> None:
    """Register every schema the FILES declare or import, in version order."""
    from catopt_dsl.registry.documents import load_spec_schemas
    from catopt_dsl.registry.errors import IncompatibleSchema, InvalidVersion
    from catopt_dsl.registry.plancheck import assessment_diagnostics
    from catopt_dsl.registry.registry import Assessment

    failed = False
    for file in files:
        found = load_spec_schemas(file)
        _echo_diags(list(found.diagnostics), found.sources)
        if not found.ok:
            failed = True
            continue
        if not found.schemas:
            click.echo(f"{file}: declares no schema", err=True)
            continue
        with _open(target, file, create=True) as registry:
            broken: set[str] = set()
            for s in found.schemas:
                if s.name in broken:
                    click.echo(f"{s.name} v{s.version}: skipped (an earlier version of `{s.name}` was refused)", err=True)
                    continue
                span = found.span(s.name, s.version)
                diags: list[Diagnostic] = []
                try:
                    result = registry.register(s.name, s)
                except IncompatibleSchema as exc:
                    a = Assessment(s.name, "new", exc.violations[0].mode, violations=exc.violations)
                    diags = assessment_diagnostics(a, s, span, _field_spans(found, s))
                except InvalidVersion:
                    (a,) = registry.assess([s])
                    diags = assessment_diagnostics(a, s, span)
                if diags:
                    _echo_diags(diags, found.sources)
                    broken.add(s.name)
                    failed = True
                    continue
                state = "restored" if result.restored else "registered" if result.created else "already registered"
                click.echo(f"{s.name} v{s.version}: {state} as version {result.version} (id {result.id}) in {registry.url}")
    sys.exit(1 if failed else 0)


@schema_group.command(name="check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mode", default=None, metavar="MODE", help="Check with this compatibility mode instead of each subject's.")
@_registry_opt
@_guard
def schema_check(file: Path, mode: str | None, target: str | None) -> None:
    """Would registering FILE's schemas succeed? Reports every violation; registers nothing."""
    from catopt_dsl.registry.compat import Mode
    from catopt_dsl.registry.documents import load_spec_schemas
    from catopt_dsl.registry.plancheck import assessment_diagnostics

    chosen = Mode.parse(mode) if mode is not None else None
    found = load_spec_schemas(file)
    _echo_diags(list(found.diagnostics), found.sources)
    if not found.ok:
        sys.exit(1)
    with _open(target, file) as registry:
        verdicts = registry.assess(found.schemas, mode=chosen)
        diags: list[Diagnostic] = []
        for s, a in zip(found.schemas, verdicts):
            diags += assessment_diagnostics(a, s, found.span(s.name, s.version), _field_spans(found, s))
            state = {
                "registered": f"registered as version {a.registered.version if a.registered else '?'}",
                "unregistered": "subject not registered yet",
                "new": f"{'compatible' if not a.violations else 'INCOMPATIBLE'} ({a.mode.value}), not registered yet",
            }.get(a.status, a.status)
            click.echo(f"{s.name} v{s.version}: {state}")
    _echo_diags(diags, found.sources)
    sys.exit(1 if any(d.severity is Severity.ERROR for d in diags) else 0)


@schema_group.command(name="list")
@click.option("--deleted", is_flag=True, help="Include soft-deleted subjects and versions.")
@_registry_opt
@_guard
def schema_list(deleted: bool, target: str | None) -> None:
    """List schema subjects, their versions and compatibility modes."""
    _list(target, deleted, kinds=("schema",), as_json=False)


@schema_group.command(name="show")
@click.argument("subject")
@click.argument("version", default="latest")
@click.option("--deleted", is_flag=True, help="Allow a soft-deleted version.")
@_registry_opt
@_guard
def schema_show(subject: str, version: str, deleted: bool, target: str | None) -> None:
    """Print one version of SUBJECT (default: the latest) as a .cat declaration."""
    _show(target, subject, version, deleted, as_json=False)


@schema_group.command(name="diff")
@click.argument("subject")
@click.argument("v1")
@click.argument("v2")
@_registry_opt
@_guard
def schema_diff(subject: str, v1: str, v2: str, target: str | None) -> None:
    """Field-by-field difference of two versions, and which modes allow V2 after V1."""
    from catopt_dsl.ir.model import IRSchema
    from catopt_dsl.registry.compat import Mode, check_compatibility

    with _open(target) as registry:
        a = registry.get(subject, _version(v1), deleted=True)
        b = registry.get(subject, _version(v2), deleted=True)
    old, new = a.document, b.document
    if not isinstance(old, IRSchema) or not isinstance(new, IRSchema):
        _fail(f"`{subject}` holds contracts; use `catoptc registry show` to compare them", 2)
    click.echo(f"--- {subject} v{old.version}")
    click.echo(f"+++ {subject} v{new.version}")

    def show(f: Any) -> str:
        ty = f.dtype + (f"[{', '.join(map(str, f.shape))}]" if f.shape else "")
        return f"{f.name}: {ty}" + ("" if f.default is None else f" = {f.default}")

    for i in range(max(len(old.fields), len(new.fields))):
        x = old.fields[i] if i < len(old.fields) else None
        y = new.fields[i] if i < len(new.fields) else None
        if x == y:
            click.echo(f"  {i:>3}  {show(x)}")
            continue
        if x is not None:
            click.echo(f"- {i:>3}  {show(x)}")
        if y is not None:
            click.echo(f"+ {i:>3}  {show(y)}")
    verdicts = {}
    for mode in (Mode.BACKWARD, Mode.FORWARD):
        verdicts[mode] = check_compatibility(subject, new, [(a.version, old)], mode)
    full = not verdicts[Mode.BACKWARD] and not verdicts[Mode.FORWARD]
    summary = ", ".join(f"{m.value} {'ok' if not v else 'broken'}" for m, v in verdicts.items())
    click.echo(f"v{new.version} after v{old.version}: {summary}, FULL {'ok' if full else 'broken'}")
    for v in verdicts[Mode.BACKWARD] + verdicts[Mode.FORWARD]:
        click.echo(f"  {v.direction}: {v.reason}")


# ---------------------------------------------------------------------------------------------
# catoptc registry
# ---------------------------------------------------------------------------------------------


@click.group(name="registry")
def registry_group() -> None:
    """The schema registry and contract marketplace: serve it, list and show both (docs/registry.md)."""


def _list(target: str | None, deleted: bool, kinds: tuple[str, ...], as_json: bool) -> None:
    from catopt_dsl.registry.contracts import CONTRACT_PREFIX
    from catopt_dsl.registry.errors import SubjectNotFound

    rows = []
    with _open(target) as registry:
        for subject in registry.subjects(deleted=deleted):
            kind = "contract" if subject.startswith(CONTRACT_PREFIX) else "schema"
            if kind not in kinds:
                continue
            numbers = registry.versions(subject, deleted=deleted)
            live = numbers
            if deleted:
                try:
                    live = registry.versions(subject)
                except SubjectNotFound:  # every version soft-deleted
                    live = []
            latest = registry.get(subject, live[-1] if live else numbers[-1], deleted=True)
            doc = latest.document
            rows.append({
                "subject": subject, "kind": kind, "versions": numbers,
                "deleted": sorted(set(numbers) - set(live)) if deleted else [],
                "latest": f"v{doc.version}" if kind == "schema" else str(doc.version),
                "mode": registry.mode(subject).value,
            })
        where = registry.url
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if not rows:
        click.echo(f"no {' or '.join(k + 's' for k in kinds)} registered in {where}")
        return
    width = max(len(r["subject"]) for r in rows)
    for r in rows:
        versions = ", ".join(str(n) + (" (deleted)" if n in r["deleted"] else "") for n in r["versions"])
        click.echo(f"{r['subject']:<{width}}  {r['kind']:<8}  latest {r['latest']:<8}  {r['mode']:<19}  versions {versions}")


def _show(target: str | None, subject: str, version: str, deleted: bool, as_json: bool) -> None:
    with _open(target) as registry:
        entry = registry.get(subject, _version(version), deleted=deleted)
        mode = registry.mode(subject)
    if as_json:
        click.echo(json.dumps({**entry.to_json(), "hash": entry.hash, "deleted": entry.deleted, "mode": mode.value},
                              indent=2, sort_keys=True))
        return
    state = ", soft-deleted" if entry.deleted else ""
    click.echo(f"// subject {entry.subject}, version {entry.version}, id {entry.id}, {entry.hash}, {mode.value}{state}")
    text = entry.text
    if entry.schema_type == "CONTRACT":
        text = json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    click.echo(text, nl=False)


@registry_group.command(name="list")
@click.option("--deleted", is_flag=True, help="Include soft-deleted subjects and versions.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@_registry_opt
@_guard
def registry_list(deleted: bool, as_json: bool, target: str | None) -> None:
    """List every subject: schemas and adapter contracts."""
    _list(target, deleted, kinds=("schema", "contract"), as_json=as_json)


@registry_group.command(name="show")
@click.argument("subject")
@click.argument("version", default="latest")
@click.option("--deleted", is_flag=True, help="Allow a soft-deleted version.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@_registry_opt
@_guard
def registry_show(subject: str, version: str, deleted: bool, as_json: bool, target: str | None) -> None:
    """Print one version of a schema or contract subject (contracts are `contract:<name>`)."""
    _show(target, subject, version, deleted, as_json)


@registry_group.command(name="config")
@click.argument("mode", required=False)
@click.option("--subject", default=None, help="A subject's own level instead of the global one.")
@click.option("--unset", is_flag=True, help="Remove the subject's own level (it follows the global one again).")
@_registry_opt
@_guard
def registry_config(mode: str | None, subject: str | None, unset: bool, target: str | None) -> None:
    """Show or set the compatibility mode (BACKWARD, FULL_TRANSITIVE, NONE, ...)."""
    from catopt_dsl.registry.compat import Mode

    if unset:
        if subject is None or mode is not None:
            raise click.UsageError("--unset takes --subject and no MODE")
        with _open(target) as registry:
            old = registry.delete_config(subject)
            now = registry.mode(subject)
        click.echo(f"{subject}: {'own level ' + old.value + ' removed' if old else 'had no own level'}; now {now.value}")
        return
    if mode is None:
        with _open(target) as registry:
            own = registry.config(subject) if subject else None
            now = registry.mode(subject)
        what = subject if subject else "global"
        source = "" if subject is None else " (own level)" if own else " (from the global level)"
        click.echo(f"{what}: {now.value}{source}")
        return
    chosen = Mode.parse(mode)
    with _open(target, create=True) as registry:
        registry.set_config(chosen, subject)
    click.echo(f"{subject or 'global'}: {chosen.value}")


@registry_group.command(name="delete")
@click.argument("subject")
@click.argument("version", required=False)
@_registry_opt
@_guard
def registry_delete(subject: str, version: str | None, target: str | None) -> None:
    """Soft-delete one version of SUBJECT, or all of them: hidden from lookups, kept as history."""
    with _open(target) as registry:
        gone = registry.delete(subject, None if version is None else _version(version))
    click.echo(f"{subject}: soft-deleted version(s) {', '.join(map(str, gone))}")


@registry_group.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8081, show_default=True, help="0 picks a free port.")
@click.option("--max-body-bytes", type=click.IntRange(1), default=1024 * 1024, show_default=True,
              help="Larger request bodies are refused with 413.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="warning",
              show_default=True, help="How much the server logs.")
@_registry_opt
@_guard
def registry_serve(host: str, port: int, max_body_bytes: int, log_level: str, target: str | None) -> None:
    """Serve the registry over a Confluent-compatible REST API until interrupted."""
    from catopt_dsl.registry.registry import Registry, is_url

    if target is not None and is_url(target):
        raise click.UsageError("serve a local registry (a file or a postgresql:// URL), not another server")
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        from catopt_dsl.registry.server import bind, serve
    except ImportError as exc:
        _fail(f"the registry server needs {exc.name}: pip install 'catopt-dsl[registry]'", 2)
    registry = _open(target, create=True)
    assert isinstance(registry, Registry)
    try:
        sock = bind(host, port)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 2)
    actual = sock.getsockname()[1]
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"catoptc registry: warning: listening on {host}: the API has no authentication", err=True)
    click.echo(f"catoptc registry: serving {registry.url} on http://{host}:{actual}", err=False)
    sys.stdout.flush()
    try:
        serve(registry, sock, max_body_bytes=max_body_bytes, log_level=log_level)
    finally:
        registry.close()


# -- contracts -----------------------------------------------------------------------------------


@registry_group.group(name="contract")
def contract_group() -> None:
    """The contract marketplace: register, list and resolve adapter contracts."""


@contract_group.command(name="register")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_registry_opt
@_guard
def contract_register(files: tuple[Path, ...], target: str | None) -> None:
    """Register adapter contracts (JSON files, one contract each)."""
    from catopt_dsl.registry.contracts import parse_contract_text
    from catopt_dsl.registry.errors import IncompatibleSchema, RegistryError

    failed = False
    with _open(target, create=True) as registry:
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                click.echo(f"{file}: error: cannot read the contract: {exc}", err=True)
                failed = True
                continue
            try:
                contract = parse_contract_text(text)
                result = registry.register(contract.subject, contract)
            except IncompatibleSchema as exc:
                for v in exc.violations:
                    click.echo(f"{file}: error[409]: {v.message()}\n  = note: rule {v.rule()}", err=True)
                failed = True
                continue
            except RegistryError as exc:
                click.echo(f"{file}: error[{exc.error_code}]: {exc.message}", err=True)
                failed = True
                continue
            state = "restored" if result.restored else "registered" if result.created else "already registered"
            click.echo(f"{contract.subject} {contract.version}: {state} as version {result.version} (id {result.id})")
    sys.exit(1 if failed else 0)


@contract_group.command(name="list")
@click.option("--kind", default=None, help="Only contracts of this kind.")
@click.option("--platform", default=None, help="Only contracts that support this platform.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@_registry_opt
@_guard
def contract_list(kind: str | None, platform: str | None, as_json: bool, target: str | None) -> None:
    """The latest version of every contract."""
    with _open(target) as registry:
        entries = registry.contracts(kind=kind, platform=platform)
    docs = [e.document.to_json() for e in entries]
    if as_json:
        click.echo(json.dumps(docs, indent=2, sort_keys=True))
        return
    if not docs:
        click.echo("no contracts match")
    for d in docs:
        click.echo(f"{d['name']} {d['version']}  kind {d['kind']}  platforms {', '.join(d['platforms'])}  api v{d['api_version']}")


@contract_group.command(name="resolve")
@click.argument("name")
@click.argument("spec", default="*")
@click.option("--platform", default=None, help="Only versions that support this platform.")
@_registry_opt
@_guard
def contract_resolve(name: str, spec: str, platform: str | None, target: str | None) -> None:
    """The highest version of contract NAME matching SPEC (`^1.2`, `>=1.0 <2`, `1.4.0`, `*`), as JSON."""
    with _open(target) as registry:
        entry = registry.resolve(name, spec, platform)
    click.echo(json.dumps({"subject": entry.subject, "version": entry.version, "id": entry.id,
                           "contract": entry.document.to_json()}, indent=2, sort_keys=True))
