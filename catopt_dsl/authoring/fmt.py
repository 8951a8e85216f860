"""`catoptc fmt`: format spec files in place (or check that they are formatted).

Formatting itself is :mod:`catopt_dsl.syntax.format`; this module finds the files, reads them
through the file gate, and writes each result atomically: the new text goes to a temporary file
in the same folder, is flushed to disk, and replaces the original with one ``os.replace``. If
anything fails before that rename, the user's file is exactly as it was.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from catopt_dsl.diagnostics import Diagnostic, DiagnosticSink, SourceMap
from catopt_dsl.syntax.format import FormatError, format_source
from catopt_dsl.syntax.parser import read_source


class Outcome(str, Enum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"  # reformatted, or (with --check) would be
    INVALID = "invalid"  # does not parse, or could not be read or written
    BUG = "bug"  # the formatter would change the meaning (a bug in catoptc)


@dataclass
class Result:
    path: Path
    outcome: Outcome
    diagnostics: list[Diagnostic]
    sources: SourceMap
    message: str = ""


def spec_paths(args: Iterable[Path]) -> Iterator[Path]:
    """The files named, with each folder replaced by the `.cat` files below it (sorted)."""
    for a in args:
        if a.is_dir():
            yield from sorted(p for p in a.rglob("*.cat") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(a).parts))
        else:
            yield a


def format_text(text: str, shown: str) -> tuple[str | None, list[Diagnostic]]:
    formatted = format_source(text, shown)
    return formatted.text, list(formatted.diagnostics)


def format_file(path: Path, shown: str, check: bool) -> Result:
    sink = DiagnosticSink()
    sources = SourceMap()
    text = read_source(path, sink, shown)
    if text is None:
        return Result(path, Outcome.INVALID, sink.sorted(), sources)
    sources.add(shown, text)
    try:
        new, diags = format_text(text, shown)
    except FormatError as exc:
        return Result(path, Outcome.BUG, [], sources, str(exc))
    if new is None:
        return Result(path, Outcome.INVALID, diags, sources)
    raw = path.read_bytes()
    if raw == new.encode("utf-8"):
        return Result(path, Outcome.UNCHANGED, diags, sources)
    if not check:
        try:
            write_atomically(path, new)
        except OSError as exc:
            return Result(path, Outcome.INVALID, diags, sources, f"cannot write {shown}: {exc.strerror or exc}")
    return Result(path, Outcome.CHANGED, diags, sources)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path``'s contents by ``text``: all or nothing, the file's permissions kept. A
    symbolic link stays a link; the file it points to is replaced."""
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".fmt", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
