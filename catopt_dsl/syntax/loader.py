"""Reads a spec and everything it imports, reporting missing files and cycles.

Imports are resolved relative to the importing file. The result is the list of parsed modules in
dependency order (imports before importers), each parsed once even when imported twice.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from catopt_dsl.diagnostics import DiagnosticSink, SourceMap, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast
from catopt_dsl.syntax.parser import decode_source, parse_text, read_source


@dataclass
class LoadedSpec:
    root: ast.Spec | None
    modules: list[ast.Spec]  # dependency order; the root last
    paths: dict[str, Path]  # display name -> resolved path
    sources: SourceMap
    digest: str  # sha256 over every module's bytes, in load order
    _hasher: "hashlib._Hash" = field(default_factory=hashlib.sha256, repr=False)


def display_name(path: Path) -> str:
    """A relative, machine-independent name when possible (spans and generated headers use it)."""
    try:
        rel = os.path.relpath(path, Path.cwd())
    except ValueError:  # different drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel


def load_spec(path: Path, sink: DiagnosticSink, display: str | None = None, text: str | None = None) -> LoadedSpec:
    """Load ``path`` and its imports. With ``text``, the root's contents are taken from it instead of
    the file (editors, fuzzing); imports still resolve relative to ``path``'s folder."""
    sources = SourceMap()
    result = LoadedSpec(None, [], {}, sources, "")
    root_text = text
    visiting: list[Path] = []
    done: dict[Path, ast.Spec | None] = {}

    def visit(p: Path, shown: str, via: ast.Import | None) -> ast.Spec | None:
        try:
            resolved = p.resolve()
        except (OSError, ValueError, RuntimeError) as exc:  # NUL bytes, symlink loops, ...
            where = via.span if via is not None else Span.unknown(shown)
            code = ErrorCode.IMPORT_NOT_FOUND if via is not None else ErrorCode.UNREADABLE
            sink.error(code, f"cannot open `{via.path if via else shown}`: {exc}", where)
            return None
        if resolved in done:
            return done[resolved]
        if resolved in visiting:
            chain = " -> ".join(display_name(v) for v in visiting[visiting.index(resolved):]) + f" -> {shown}"
            assert via is not None
            sink.error(ErrorCode.IMPORT_CYCLE, f"import cycle: {chain}", via.span, note("a spec cannot import itself, directly or through others"))
            return None
        local = DiagnosticSink()
        body = root_text if (via is None and root_text is not None) else read_source(p, local, shown)
        if body is None:
            if via is not None:
                sink.error(ErrorCode.IMPORT_NOT_FOUND, f"cannot import `{via.path}`: {local.diagnostics[0].message if local.diagnostics else 'unreadable'}", via.span)
            else:
                for d in local.diagnostics:
                    sink.report(d.code, d.message, d.span, *d.notes, severity=d.severity)
            done[resolved] = None
            return None
        sources.add(shown, body)
        result._hasher.update(shown.encode() + b"\0" + body.encode("utf-8", "surrogatepass") + b"\0")
        spec = parse_text(body, shown, sink)
        visiting.append(resolved)
        if spec is not None:
            for imp in spec.imports:
                target = (p.parent / imp.path)
                visit(target, display_name(target), imp)
        visiting.pop()
        done[resolved] = spec
        if spec is not None:
            result.modules.append(spec)
            result.paths[shown] = resolved
        return spec

    result.root = visit(path, display or display_name(path), None)
    result.digest = result._hasher.hexdigest()
    return result


__all__ = ["LoadedSpec", "load_spec", "display_name", "decode_source", "Span"]
