"""Reads a spec and everything it imports, reporting missing files, files outside the allowed
folders and cycles.

Imports are resolved relative to the folder of the (resolved) importing file and read through the
file gate (:mod:`catopt_dsl.files`): an import must stay inside the root spec's folder or an
``--allow-path`` folder (E0108), and must be a regular file within the size limit. The result is
the list of parsed modules in dependency order (imports before importers), each parsed once even
when imported twice.

The digest covers what the spec *says*, never where it lies: each module's text in load order
(imports are named by their content, through the import statements of the text that names them).
Compiling one spec from any working directory, through any path, gives one digest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from catopt_dsl import limits
from catopt_dsl.diagnostics import DiagnosticSink, SourceMap, help_, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.files import Folders, ReadError, Refusal, read_file, resolve
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast
from catopt_dsl.syntax.parser import (
    decode_source,
    parse_text,
    spec_read_message,
    spec_read_notes,
)


@dataclass
class LoadedSpec:
    root: ast.Spec | None
    modules: list[ast.Spec]  # dependency order; the root last
    paths: dict[str, Path]  # display name -> resolved path
    sources: SourceMap
    digest: str  # sha256 over every module's text, in load order
    folders: Folders = field(default_factory=lambda: Folders(()))
    _hasher: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)


def display_name(path: Path) -> str:
    """A short name for diagnostics: relative to the working directory when the file is below it.

    Only diagnostics use it; nothing generated does (generated code names the spec by its file name).
    """
    try:
        rel = os.path.relpath(path, Path.cwd())
    except ValueError:  # different drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel


def load_spec(
    path: Path,
    sink: DiagnosticSink,
    display: str | None = None,
    text: str | None = None,
    allow_paths: tuple[str | Path, ...] = (),
) -> LoadedSpec:
    """Load ``path`` and its imports. With ``text``, the root's contents are taken from it instead of
    the file (editors, fuzzing); imports still resolve relative to ``path``'s folder."""
    sources = SourceMap()
    folders = Folders.for_spec(path, allow_paths)
    result = LoadedSpec(None, [], {}, sources, "", folders)
    root_text = text
    visiting: list[Path] = []
    done: dict[Path, ast.Spec | None] = {}

    def visit(p: Path, shown: str, via: ast.Import | None) -> ast.Spec | None:
        resolved = resolve(p)
        if isinstance(resolved, ReadError):
            where = via.span if via is not None else Span.unknown(shown)
            code = ErrorCode.IMPORT_NOT_FOUND if via is not None else ErrorCode.UNREADABLE
            sink.error(code, f"cannot open `{via.path if via else shown}`: {resolved.reason}", where)
            return None
        if resolved in done:
            return done[resolved]
        if resolved in visiting:
            chain = " -> ".join(display_name(v) for v in visiting[visiting.index(resolved):]) + f" -> {shown}"
            assert via is not None
            sink.error(ErrorCode.IMPORT_CYCLE, f"import cycle: {chain}", via.span, note("a spec cannot import itself, directly or through others"))
            return None
        if via is None and root_text is not None:
            body: str | None = root_text
        else:
            body = _read(p, shown, via, folders, sink)
        if body is None:
            done[resolved] = None
            return None
        sources.add(shown, body)
        encoded = body.encode("utf-8", "surrogatepass")
        result._hasher.update(len(encoded).to_bytes(8, "little") + encoded)
        spec = parse_text(body, shown, sink)
        visiting.append(resolved)
        if spec is not None:
            for imp in spec.imports:
                # Relative to the folder of the file that says `import`, after its links resolve.
                target = resolved.parent / imp.path
                visit(target, display_name(target), imp)  # noqa: F821 - defined; load_spec empties it on return
        visiting.pop()
        done[resolved] = spec
        if spec is not None:
            result.modules.append(spec)
            result.paths[shown] = resolved
        return spec

    result.root = visit(path, display or display_name(path), None)
    result.digest = result._hasher.hexdigest()
    # `visit` calls itself, so its closure holds it: a cycle that would keep every parsed module
    # (the whole AST, through `done`) alive until a full garbage collection. Emptying the cell
    # lets reference counting free them as soon as the caller drops them.
    del visit
    return result


def _read(p: Path, shown: str, via: ast.Import | None, folders: Folders, sink: DiagnosticSink) -> str | None:
    """Read one module through the file gate; report why not (the root: E0005, an import: E0104/E0108)."""
    data = read_file(p, folders if via is not None else None, limits.MAX_SPEC_BYTES)
    if isinstance(data, ReadError):
        if via is None:
            sink.error(ErrorCode.UNREADABLE, spec_read_message(shown, data), Span.unknown(shown), *spec_read_notes(data))
        elif data.kind is Refusal.OUTSIDE:
            sink.error(
                ErrorCode.IMPORT_OUTSIDE,
                f"cannot import `{via.path}`: it resolves outside the spec's folder",
                via.span,
                note("imports must lie in the root spec's folder (symlinks and `..` are resolved first)"),
                help_("move the file next to the spec, or pass --allow-path DIR"),
            )
        elif data.kind is Refusal.MISSING:
            sink.error(ErrorCode.IMPORT_NOT_FOUND, f"cannot import `{via.path}`: no such file", via.span)
        else:
            sink.error(ErrorCode.IMPORT_NOT_FOUND, f"cannot import `{via.path}`: {data.reason}", via.span)
        return None
    local = DiagnosticSink()
    body = decode_source(data, shown, local)
    if body is None and via is not None:
        # The file is inside the allowed folders, but say why at the import as well.
        for d in local.diagnostics:
            sink.error(ErrorCode.IMPORT_NOT_FOUND, f"cannot import `{via.path}`: {d.message}", via.span)
        return None
    for d in local.diagnostics:
        sink.report(d.code, d.message, d.span, *d.notes, severity=d.severity)
    return body


__all__ = ["LoadedSpec", "Span", "decode_source", "display_name", "load_spec"]
