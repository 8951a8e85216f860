"""``catoptc ledger append|show|verify|prove|consistency``.

Every failure is one ``catoptc: error: ...`` line and exit code 1 (2 for misused options);
``verify`` lists each problem with the entry it concerns.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

__all__ = ["ledger"]


def _fail(message: str) -> NoReturn:
    click.echo(f"catoptc: error: {message}", err=True)
    sys.exit(1)


def _open(path: Path, create: bool = False) -> Any:
    from catopt_dsl.ledger.ledger import Ledger, LedgerError

    try:
        return Ledger.open(path, create=create)
    except LedgerError as exc:
        _fail(str(exc))


def _identity(path: Path) -> Any:
    from catopt_dsl.identity.keys import Identity, IdentityError

    try:
        return Identity.load(path)
    except IdentityError as exc:
        _fail(str(exc))


def _report_torn(led: Any) -> None:
    if led.torn is not None:
        click.echo(f"catoptc: warning: {led.path}: {led.torn.describe()}", err=True)


_file = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
_as_json = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@click.group(help="The governance ledger: signed entries under an RFC 6962 Merkle tree.")
def ledger() -> None:
    pass


@ledger.command()
@_file
@click.option("--identity", "identity_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Key file of the acting DID (signs the entry).")
@click.option("--kind", required=True, help="Event kind, e.g. spec.published, schema.registered, adapter.approved.")
@click.option("--body", default=None, help='The event as a JSON object, e.g. \'{"spec_hash": "..."}\' (no floats).')
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Read the body from a JSON file.")
@click.option("--time", "time_", default=None, help="A timestamp to record (entries carry no clock otherwise).")
def append(file: Path, identity_path: Path, kind: str, body: str | None, body_file: Path | None, time_: str | None) -> None:
    """Append a signed entry to FILE (created if missing)."""
    from catopt_dsl.ledger.entry import EntryError
    from catopt_dsl.ledger.ledger import LedgerError

    if body is not None and body_file is not None:
        raise click.UsageError("give the body with --body or --body-file, not both")
    text = body if body is not None else "{}"
    if body_file is not None:
        try:
            text = body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"{body_file}: cannot read: {getattr(exc, 'strerror', None) or exc}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    if not isinstance(doc, dict):
        _fail("the body must be a JSON object")
    ident = _identity(identity_path)
    led = _open(file, create=True)
    try:
        se = led.append(ident, kind, doc, time_)
    except (EntryError, LedgerError) as exc:
        _fail(str(exc))
    for torn, aside in led.recovered:
        click.echo(f"catoptc: warning: {file}: {torn.describe()}; those bytes were moved to {aside}", err=True)
    click.echo(f"entry {se.entry.index} appended; tree size {led.size}, root {led.root().hex()}")


def _summary(body: dict[str, Any]) -> str:
    parts = []
    for k in sorted(body):
        v = body[k]
        if isinstance(v, (str, int, bool)) or v is None:
            s = str(v)
            parts.append(f"{k}={s[:16] + '...' if len(s) > 19 else s}")
    return " ".join(parts[:4])


@ledger.command()
@_file
@_as_json
@click.option("--entry", "index", type=int, default=None, help="Show this one entry in full.")
@click.option("--signed-head", "head_key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Print a tree head for the current size signed with this key file (save it to check later growth).")
@click.option("--time", "time_", default=None, help="Timestamp to put in the signed head.")
def show(file: Path, as_json: bool, index: int | None, head_key: Path | None, time_: str | None) -> None:
    """Print the tree head and the entries of FILE."""
    from catopt_dsl.ledger.entry import EntryError
    from catopt_dsl.ledger.ledger import LedgerError

    led = _open(file)
    _report_torn(led)
    if head_key is not None:
        click.echo(led.head(_identity(head_key), time_).to_json(), nl=False)
        return
    if index is not None:
        try:
            se = led.entry(index)
        except (EntryError, LedgerError) as exc:
            _fail(str(exc))
        doc = se.entry.to_dict()
        doc["signature"] = se.signature.hex()
        doc["leaf_hash"] = led.tree.leaf(index).hex()
        click.echo(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))
        return
    rows = []
    for i in range(led.size):
        try:
            e = led.entry(i).entry
            rows.append({"index": i, "kind": e.kind, "actor": e.actor, "time": e.time, "body": dict(e.body)})
        except EntryError as exc:
            rows.append({"index": i, "error": str(exc)})
    if as_json:
        click.echo(json.dumps({"size": led.size, "root": led.root().hex(), "entries": rows}, sort_keys=True, ensure_ascii=False))
        return
    click.echo(f"size {led.size}, root {led.root().hex()}")
    for r in rows:
        if "error" in r:
            click.echo(f"{r['index']:>6}  <malformed: {r['error']}>")
        else:
            click.echo(f"{r['index']:>6}  {r['kind']:<18} {r['actor'][:24]}...  {_summary(r['body'])}")


@ledger.command()
@_file
@click.option("--head", "head_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A signed tree head saved earlier: check the ledger still extends it.")
@click.option("--rerun", is_flag=True, help="Also re-run every recorded solve and compare its result hash.")
@click.option("--spec-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Resolve recorded relative spec paths against this folder (default: the current one).")
@_as_json
def verify(file: Path, head_path: Path | None, rerun: bool, spec_root: Path | None, as_json: bool) -> None:
    """Re-check every record, entry, signature, the chain and the tree of FILE."""
    from catopt_dsl.ledger.entry import EntryError, TreeHead
    from catopt_dsl.ledger.ledger import Problem

    led = _open(file)
    head = None
    if head_path is not None:
        try:
            head = TreeHead.from_json(head_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, EntryError) as exc:
            _fail(f"{head_path}: {getattr(exc, 'strerror', None) or exc}")
    report = led.verify(head)
    reruns: list[tuple[int, bool, str]] = []
    if rerun:
        from catopt_dsl.ledger.solve_record import rerun_solve

        bad = {p.index for p in report.problems}
        for i in range(led.size):
            if i in bad:
                continue
            e = led.entry(i).entry
            if e.kind == "solve.recorded":
                out = rerun_solve(e.body, spec_root)
                reruns.append((i, out.ok, out.message))
                if not out.ok:
                    report.problems.append(Problem(i, out.message))
    if as_json:
        click.echo(json.dumps({
            "ok": report.ok, "size": report.size, "root": report.root.hex(),
            "problems": [{"index": p.index, "offset": p.offset, "message": p.message} for p in report.problems],
            "reruns": [{"index": i, "ok": ok, "message": m} for i, ok, m in reruns],
        }, sort_keys=True))
    else:
        for i, ok, m in reruns:
            if ok:
                click.echo(f"entry {i}: {m}", err=True)
        for p in report.problems:
            click.echo(f"{file}: {p.describe()}", err=True)
        if report.ok:
            click.echo(f"{file}: ok: {report.size} entries, root {report.root.hex()}")
        else:
            click.echo(f"{file}: FAILED: {len(report.problems)} problem(s)", err=True)
    sys.exit(0 if report.ok else 1)


@ledger.command()
@_file
@click.argument("index", type=int)
@click.option("--size", type=int, default=None, help="Tree size to prove against (default: the whole ledger).")
@_as_json
def prove(file: Path, index: int, size: int | None, as_json: bool) -> None:
    """Print the inclusion proof (audit path) of entry INDEX."""
    from catopt_dsl.ledger.ledger import LedgerError
    from catopt_dsl.ledger.merkle import verify_inclusion

    led = _open(file)
    _report_torn(led)
    try:
        leaf, path, root = led.prove(index, size)
    except LedgerError as exc:
        _fail(str(exc))
    n = led.size if size is None else size
    verify_inclusion(leaf, index, n, path, root)  # never print a proof that does not check
    doc = {"index": index, "tree_size": n, "leaf_hash": leaf.hex(), "root": root.hex(), "path": [h.hex() for h in path]}
    if as_json:
        click.echo(json.dumps(doc, sort_keys=True))
        return
    click.echo(f"entry {index} of {n}: leaf {leaf.hex()}")
    click.echo(f"root {root.hex()}")
    for h in path:
        click.echo(f"  {h.hex()}")


@ledger.command()
@_file
@click.argument("old_size", type=int)
@click.argument("new_size", type=int, required=False)
@_as_json
def consistency(file: Path, old_size: int, new_size: int | None, as_json: bool) -> None:
    """Print the consistency proof from tree size OLD_SIZE to NEW_SIZE (default: the whole ledger)."""
    from catopt_dsl.ledger.ledger import LedgerError
    from catopt_dsl.ledger.merkle import verify_consistency

    led = _open(file)
    _report_torn(led)
    n = led.size if new_size is None else new_size
    if old_size < 1:
        _fail("the old size must be at least 1 (every log extends the empty one)")
    try:
        proof, old_root, new_root = led.consistency(old_size, n)
    except LedgerError as exc:
        _fail(str(exc))
    verify_consistency(old_size, n, old_root, new_root, proof)
    doc = {"old_size": old_size, "new_size": n, "old_root": old_root.hex(), "new_root": new_root.hex(),
           "proof": [h.hex() for h in proof]}
    if as_json:
        click.echo(json.dumps(doc, sort_keys=True))
        return
    click.echo(f"{old_size} -> {n}: old root {old_root.hex()}, new root {new_root.hex()}")
    for h in proof:
        click.echo(f"  {h.hex()}")
