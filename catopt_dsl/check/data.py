"""`load("file")`: data files next to the spec.

Rules (documented in docs/language.md):

* the path is relative to the folder of the spec that contains the ``load`` (an absolute path is
  taken as is); the file is read through the compiler's one file gate (:mod:`catopt_dsl.files`):
  after resolving symlinks and ``..`` it must lie inside the root spec's folder or one of the
  folders given with ``--allow-path`` -- otherwise E0605, so a spec cannot read arbitrary files of
  whoever compiles it -- and it must be a regular file of at most ``MAX_DATA_BYTES``;
* ``.npy`` files are parsed here from their bytes: the header is read and checked (numeric dtype,
  no pickled objects, at most ``MAX_ARRAY_ELEMENTS`` elements, exactly as many bytes as it claims)
  before any array is built, so a header that claims 10^11 elements costs nothing; ``.npz``
  archives are refused. ``.csv`` files are read with ``np.loadtxt(delimiter=",", ndmin=1)``: one
  row or one column gives a vector, several rows of several columns a matrix;
* a missing file is E0601; a directory, a FIFO or device, an unreadable, oversized or corrupt
  file, another extension, an empty file or a non-numeric dtype is E0602; NaN or Inf anywhere is
  E0604;
* every file is read once per compilation: results (including failures) are cached in
  ``ExprContext.cache`` by resolved path, so a 1,000-member family indexing one file costs one read.

Loaded arrays are read-only, with dtype float64, int64 or bool.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from catopt_dsl import limits
from catopt_dsl.check.scope import ExprContext
from catopt_dsl.diagnostics import DiagnosticSink, Note, help_, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.files import ReadError, Refusal, check_file, read_file, resolve
from catopt_dsl.syntax import ast

SUPPORTED_SUFFIXES = (".npy", ".csv")

# A cached outcome: ("ok", array) or ("err", code, message, notes).
_Outcome = tuple


def _target(path: str, ctx: ExprContext, file: str | None) -> Path:
    base = Path(ctx.file_dirs.get(file, ctx.spec_dir)) if file is not None else Path(ctx.spec_dir)
    return base / path


def load_data(node: ast.Load, ctx: ExprContext, sink: DiagnosticSink) -> np.ndarray | None:
    """Load the file of a ``load(...)`` node, or report why not and return None."""
    target = _target(node.path, ctx, node.span.file)
    resolved = resolve(target)
    key = ("load", str(resolved) if isinstance(resolved, Path) else node.path)
    outcome = ctx.cache.get(key)
    if outcome is None:
        outcome = _read(node.path, target, ctx)
        ctx.cache[key] = outcome
    if outcome[0] == "ok":
        return outcome[1]  # type: ignore[no-any-return]
    _, code, message, notes = outcome
    sink.error(code, message, node.span, *notes)
    return None


def _err(code: ErrorCode, message: str, *notes: Note) -> _Outcome:
    return ("err", code, message, tuple(notes))


def _refusal(shown: str, err: ReadError) -> _Outcome:
    if err.kind is Refusal.OUTSIDE:
        return _err(
            ErrorCode.LOAD_OUTSIDE,
            f"`{shown}` resolves outside the spec's folder",
            note("data files must lie in the root spec's folder (symlinks and `..` are resolved first)"),
            help_("move the file next to the spec, or pass --allow-path DIR"),
        )
    if err.kind is Refusal.MISSING:
        # The message names the path as written (no absolute paths: output is machine-independent).
        return _err(ErrorCode.LOAD_MISSING, f"data file `{shown}` not found", note("paths are relative to the spec's folder"))
    if err.kind is Refusal.DIRECTORY:
        return _err(ErrorCode.LOAD_UNREADABLE, f"`{shown}` is a directory, not a data file")
    return _err(ErrorCode.LOAD_UNREADABLE, f"cannot load `{shown}`: {err.reason}")


def _read(shown: str, target: Path, ctx: ExprContext) -> _Outcome:
    checked = check_file(target, ctx.folders, limits.MAX_DATA_BYTES)
    if isinstance(checked, ReadError):
        return _refusal(shown, checked)
    suffix = checked.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return _err(
            ErrorCode.LOAD_UNREADABLE,
            f"cannot load `{shown}`: unsupported file type `{suffix or '(none)'}`",
            help_("supported formats are .npy and .csv"),
        )
    data = read_file(checked, ctx.folders, limits.MAX_DATA_BYTES)
    if isinstance(data, ReadError):
        return _refusal(shown, data)
    try:
        if suffix == ".npy":
            arr = _read_npy(data)
        else:
            arr = _read_csv(data)
    except _Refused as exc:
        return _err(ErrorCode.LOAD_UNREADABLE, f"cannot load `{shown}`: {exc}", *exc.notes)
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _err(ErrorCode.LOAD_UNREADABLE, f"cannot load `{shown}`: {reason}")
    if arr.size == 0:
        return _err(ErrorCode.LOAD_UNREADABLE, f"`{shown}` holds no data")
    if arr.size > limits.MAX_ARRAY_ELEMENTS:
        return _err(
            ErrorCode.LOAD_UNREADABLE,
            f"`{shown}` holds {arr.size:,} elements; an array has at most {limits.MAX_ARRAY_ELEMENTS:,}",
        )
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


def _read_npy(data: bytes) -> np.ndarray:
    """Parse an .npy file from its bytes, checking the header's claims before building anything."""
    if data.startswith(b"PK\x03\x04"):
        raise _Refused("it is an .npz archive, not a single .npy array")
    fp = io.BytesIO(data)
    major, _minor = np.lib.format.read_magic(fp)
    if major == 1:
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    elif major in (2, 3):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise _Refused(f"unsupported .npy format version {major}")
    if dtype.hasobject:
        raise _Refused("it holds pickled Python objects", note("only plain numeric arrays are loaded (no pickles)"))
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise _Refused(f"it holds {dtype} data; only float, int and bool arrays can be loaded")
    count = limits.elements(shape)
    if count > limits.MAX_ARRAY_ELEMENTS:
        raise _Refused(f"its header claims {count:,} elements; an array has at most {limits.MAX_ARRAY_ELEMENTS:,}")
    offset = fp.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise _Refused(
            f"its header claims {count:,} elements of {dtype.itemsize} bytes, but the file holds {len(data) - offset} bytes of data"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_csv(data: bytes) -> np.ndarray:
    # utf-8-sig: spreadsheets save CSV with a byte-order mark, which is not part of the first number
    text = data.decode("utf-8-sig")
    with warnings.catch_warnings():
        # Empty files warn instead of raising; `size == 0` is reported by the caller.
        warnings.simplefilter("ignore")
        return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=1, dtype=np.float64)
