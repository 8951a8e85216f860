"""`load("file")`: data files next to the spec.

Rules (documented in docs/language.md):

* the path is relative to the folder of the spec that contains the ``load`` (an absolute path is
  taken as is); after resolving symlinks and ``..`` it must lie inside that folder or inside one
  of the folders given with ``--allow-path`` -- otherwise E0605, so a spec cannot read arbitrary
  files of whoever compiles it;
* ``.npy`` files are read with ``np.load(allow_pickle=False)`` (pickled object arrays and ``.npz``
  archives are refused); ``.csv`` files with ``np.loadtxt(delimiter=",", ndmin=1)``: one row or
  one column gives a vector, several rows of several columns a matrix;
* a missing file is E0601; a directory, an unreadable or corrupt file, another extension, an
  empty file or a non-numeric dtype is E0602; NaN or Inf anywhere is E0604;
* every file is read once per compilation: results (including failures) are cached in
  ``ExprContext.cache`` by resolved path, so a 1,000-member family indexing one file costs one read.

Loaded arrays are read-only, with dtype float64, int64 or bool.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from catopt_dsl.check.scope import ExprContext
from catopt_dsl.diagnostics import DiagnosticSink, Note, help_, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.syntax import ast

SUPPORTED_SUFFIXES = (".npy", ".csv")

# A cached outcome: ("ok", array) or ("err", code, message, notes).
_Outcome = tuple


def resolve_data_path(path: str, ctx: ExprContext, file: str | None = None) -> tuple[Path, bool]:
    """``(resolved path, allowed)`` for a path written in ``load(...)`` in spec ``file``."""
    base = Path(ctx.file_dirs.get(file, ctx.spec_dir)) if file is not None else Path(ctx.spec_dir)
    if "\0" in path:  # realpath raises on NUL; such a path names no file anywhere
        return base / path.replace("\0", "\\0"), False
    resolved = Path(os.path.realpath(base / path))
    roots = [Path(os.path.realpath(base))] + [Path(os.path.realpath(p)) for p in ctx.allow_paths]
    allowed = any(resolved == r or resolved.is_relative_to(r) for r in roots)
    return resolved, allowed


def load_data(node: ast.Load, ctx: ExprContext, sink: DiagnosticSink) -> np.ndarray | None:
    """Load the file of a ``load(...)`` node, or report why not and return None."""
    resolved, allowed = resolve_data_path(node.path, ctx, node.span.file)
    if not allowed:
        sink.error(
            ErrorCode.LOAD_OUTSIDE,
            f"`{node.path}` resolves outside the spec's folder",
            node.span,
            note("data files must lie in the spec's folder (symlinks and `..` are resolved first)"),
            help_("move the file next to the spec, or pass --allow-path DIR"),
        )
        return None
    key = ("load", str(resolved))
    outcome = ctx.cache.get(key)
    if outcome is None:
        outcome = _read(node.path, resolved)
        ctx.cache[key] = outcome
    if outcome[0] == "ok":
        return outcome[1]  # type: ignore[no-any-return]
    _, code, message, notes = outcome
    sink.error(code, message, node.span, *notes)
    return None


def _err(code: ErrorCode, message: str, *notes: Note) -> _Outcome:
    return ("err", code, message, tuple(notes))


def _read(shown: str, path: Path) -> _Outcome:
    suffix = path.suffix.lower()
    if not path.exists():
        # The message names the path as written (no absolute paths: output is machine-independent).
        return _err(
            ErrorCode.LOAD_MISSING, f"data file `{shown}` not found", note("paths are relative to the spec's folder")
        )
    if path.is_dir():
        return _err(ErrorCode.LOAD_UNREADABLE, f"`{shown}` is a directory, not a data file")
    if suffix not in SUPPORTED_SUFFIXES:
        return _err(
            ErrorCode.LOAD_UNREADABLE,
            f"cannot load `{shown}`: unsupported file type `{suffix or '(none)'}`",
            help_("supported formats are .npy and .csv"),
        )
    try:
        if suffix == ".npy":
            arr = _read_npy(path)
        else:
            arr = _read_csv(path)
    except _Refused as exc:
        return _err(ErrorCode.LOAD_UNREADABLE, f"cannot load `{shown}`: {exc}", *exc.notes)
    except (OSError, ValueError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _err(ErrorCode.LOAD_UNREADABLE, f"cannot load `{shown}`: {reason}")
    if arr.size == 0:
        return _err(ErrorCode.LOAD_UNREADABLE, f"`{shown}` holds no data")
    kind = arr.dtype.kind
    if kind == "b":
        arr = arr.astype(np.bool_)
    elif kind in "iu":
        if kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            return _err(ErrorCode.LOAD_UNREADABLE, f"`{shown}` holds integers too large for int64")
        arr = arr.astype(np.int64)
    elif kind == "f":
        arr = arr.astype(np.float64)
    else:
        return _err(
            ErrorCode.LOAD_UNREADABLE,
            f"`{shown}` holds {arr.dtype} data; only float, int and bool arrays can be loaded",
        )
    if kind == "f" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = ", ".join(str(int(i)) for i in bad)
        value = arr[tuple(bad)]
        return _err(
            ErrorCode.LOAD_NONFINITE,
            f"`{shown}` contains {'NaN' if np.isnan(value) else 'Inf'} (first at index [{where}])",
            help_("clean the data: every entry must be a finite number"),
        )
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return ("ok", arr)


class _Refused(ValueError):
    def __init__(self, message: str, *notes: Note) -> None:
        super().__init__(message)
        self.notes = notes


def _read_npy(path: Path) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _Refused(
                "it holds pickled Python objects", note("only plain numeric arrays are loaded (no pickles)")
            ) from exc
        raise
    if not isinstance(data, np.ndarray):
        # `.npz` archives come back as NpzFile; close it and refuse.
        close = getattr(data, "close", None)
        if close is not None:
            close()
        raise _Refused("it is an .npz archive, not a single .npy array")
    return data


def _read_csv(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        # Empty files warn instead of raising; `size == 0` is reported by the caller.
        warnings.simplefilter("ignore")
        return np.loadtxt(path, delimiter=",", ndmin=1, dtype=np.float64, encoding="utf-8")
