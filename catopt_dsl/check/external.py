"""Adapters in a spec: `via NAME [version requirement]` and external losses.

* ``via torch >= 1.0`` resolves against the installed adapters (entry-point group
  ``catopt.adapters``, ``catopt_dsl.adapters.registry``). A `via` that names no installed adapter is
  an error (E0901) when the object relies on the adapter -- it states a version requirement or has an
  external loss; a plain ``via NAME`` stays what it always was, a label Functors apply to.
* ``minimize "module:function"(data = "data/site_0.npz");`` is checked here: the object has a
  `via` framework adapter, no other objective and no constraints (the adapter's prox step is
  unconstrained), only the arguments the adapter reads; the data file is read under the same file
  gate as ``load()``; the reference must resolve (the spec's folder first, then the installed
  packages) and the loss must accept the declared vars (the adapter builds the problem and
  evaluates it once, so a parameter count that does not fit fails here, not mid-solve). All E0902.
* Convexity cannot be checked for external code. The adapter's contract says who vouches for it;
  a loss nobody declares convex is allowed with a warning (E0903) that ADMM is then a heuristic.

The adapter API lives in ``catopt_dsl.adapters``; it is imported only when a spec uses an adapter,
so ``catoptc check`` on any other spec loads neither packaging metadata nor a framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl import limits
from catopt_dsl.check.scope import ExprContext
from catopt_dsl.diagnostics import DiagnosticSink, help_, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.files import ReadError, check_file
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast

__all__ = ["EXTERNAL_ARGS", "ExternalCheck", "check_adapter", "check_external", "check_platform"]

#: the keyword arguments an external loss takes: ``data``, the tenant's .npz/.npy file; ``init``, a
#: .npz holding a starting point for the vars (by name), for non-convex models, whose zero is often
#: a saddle point (an MLP with all weights zero has a zero gradient in every hidden weight)
EXTERNAL_ARGS = ("data", "init")


@dataclass(frozen=True, eq=False)
class ExternalCheck:
    """What the checker learnt about one object's external loss (lowering copies it into the IR)."""

    adapter: str
    adapter_version: str  # the installed adapter's contract version
    requirement: str  # the spec's specifiers ("" for none)
    reference: str
    data_path: str  # as written (after the family index is substituted), "" for none
    data: tuple[tuple[str, np.ndarray], ...]
    search_path: str  # the folder the reference resolves in first (the spec's)
    convex: bool
    convexity: str  # "declared convex by adapter torch (...)" or why not
    init: tuple[tuple[str, np.ndarray], ...] = ()  # the vars' starting point, by name (``init``)


def check_adapter(item: ast.LocalProblem, sink: DiagnosticSink, cache: dict[Any, Any]) -> Any | None:
    """The framework adapter ``item`` names with `via`, when the object relies on it (a version
    requirement or an external loss); None otherwise, or after reporting why it does not resolve."""
    if item.adapter is None or not (item.adapter_version or item.body.externals):
        return None
    return _resolve_adapter(
        "framework", "via", item.adapter, item.adapter_version, item.adapter_span or item.name_span, sink, cache
    )


def check_platform(item: ast.LocalProblem, sink: DiagnosticSink, cache: dict[Any, Any]) -> Any | None:
    """The hardware adapter ``item`` names with `on NAME <requirement>`; None without a requirement
    (a plain `on cuda` stays a placement label, as before adapters existed) or after reporting why
    it does not resolve (E0901)."""
    if item.platform is None or not item.platform_version:
        return None
    return _resolve_adapter(
        "hardware", "on", item.platform, item.platform_version, item.platform_span or item.name_span, sink, cache
    )


def _resolve_adapter(
    kind: str, keyword: str, name: str, version: str, span: Span, sink: DiagnosticSink, cache: dict[Any, Any]
) -> Any | None:
    """Resolve ``name version`` among the ``kind`` adapters once per spec (``cache``), reporting
    E0901 at ``span`` when the requirement does not parse or nothing installed satisfies it."""
    key = (kind, name, version)
    if key in cache:
        return cache[key]
    from packaging.specifiers import InvalidSpecifier
    from packaging.version import InvalidVersion

    from catopt_dsl.adapters.api import AdapterError
    from catopt_dsl.adapters.registry import Requirement, resolve

    try:
        found = resolve(Requirement(name, version), kind=kind)
    except AdapterError as exc:  # an unparsable specifier
        sink.error(ErrorCode.ADAPTER, str(exc), span)
        cache[key] = None
        return None
    except (InvalidSpecifier, InvalidVersion) as exc:  # `via torch == 1.0.0.0.x`
        sink.error(ErrorCode.ADAPTER, f"`{keyword} {name} {version}`: {exc}", span)
        cache[key] = None
        return None
    if not found.ok:
        sink.error(ErrorCode.ADAPTER, found.message, span, *((help_(found.help),) if found.help else ()))
    cache[key] = found.adapter
    return found.adapter


def check_external(
    item: ast.LocalProblem,
    name: str,
    index: int | None,
    adapter: Any | None,
    ctx: ExprContext,
    sink: DiagnosticSink,
) -> ExternalCheck | None:
    """Check member ``name`` of ``item``'s external loss; None (after reporting) when it fails."""
    body = item.body
    if not body.externals:
        return None
    ext = body.externals[0]
    ok = True
    for extra in body.externals[1:]:
        sink.error(ErrorCode.DUPLICATE, f"`{name}` has more than one objective", extra.span, note("first objective here", ext.span))
        ok = False
    for obj in body.objectives:
        sink.error(
            ErrorCode.EXTERNAL_LOSS,
            f"`{name}` has an external loss and an expression objective; an object has one objective",
            obj.span,
            note("the external loss is here", ext.span),
            help_("put the regulariser in the SharedVariables block, which every site shares"),
        )
        ok = False
    if ext.sense != "minimize":
        sink.error(ErrorCode.EXTERNAL_LOSS, "an external loss is minimised: write `minimize`", ext.span)
        ok = False
    if body.constraints:
        sink.error(
            ErrorCode.EXTERNAL_LOSS,
            f"`{name}` has an external loss and constraints; an adapter's prox step is unconstrained",
            body.constraints[0].span,
            help_("drop the constraints, or write the loss in the .cat language"),
        )
        ok = False
    if item.adapter is None:
        sink.error(
            ErrorCode.EXTERNAL_LOSS,
            f"an external loss needs a framework adapter: `LocalProblem {item.name} via torch {{ ... }}`",
            ext.span,
        )
        return None
    args: dict[str, str] = {}
    for (key, value), span in zip(ext.args, ext.arg_spans or (ext.span,) * len(ext.args)):
        if key not in EXTERNAL_ARGS:
            sink.error(
                ErrorCode.EXTERNAL_LOSS,
                f"an external loss takes {', '.join(f'`{a}`' for a in EXTERNAL_ARGS)}, not `{key}`",
                span,
            )
            ok = False
        elif key in args:
            sink.error(ErrorCode.DUPLICATE, f"argument `{key}` given twice", span)
            ok = False
        args[key] = value
    if adapter is None or not ok:
        return None
    base = Path(ctx.file_dirs.get(ext.span.file, ctx.spec_dir))
    from catopt_dsl.adapters.api import AdapterError, ParamLayout

    paths = {}
    for key in EXTERNAL_ARGS:
        path = args.get(key, "")
        if item.family is not None and index is not None:
            path = path.replace("{" + item.family.index + "}", str(index))
        paths[key] = path
    data = _read(paths["data"], base, ctx, sink, ext.span)
    init = _read(paths["init"], base, ctx, sink, ext.span)
    if data is None or init is None:
        return None
    layout = ParamLayout.of(*((v.name, tuple(v.type.dims)) for v in body.vars))
    if paths["init"]:
        try:
            layout.flatten(init)
        except AdapterError as exc:
            sink.error(ErrorCode.EXTERNAL_LOSS, f"`init` file `{paths['init']}`: {exc}", ext.span,
                       note(f"`{name}` declares {layout.describe()}"))
            return None
    try:
        problem = adapter.problem(ext.reference, data, layout, search_path=(base,))
    except AdapterError as exc:
        sink.error(
            ErrorCode.EXTERNAL_LOSS,
            str(exc),
            ext.reference_span,
            note(f"`{name}` declares {layout.n} parameters: {layout.describe()} (flattened in this order, row-major)"),
        )
        return None
    contract = adapter.contract
    if not problem.convex:
        sink.warning(
            ErrorCode.HEURISTIC,
            f"loss `{ext.reference}` of `{name}` is not known to be convex: ADMM is then a heuristic",
            ext.reference_span,
            note(problem.convexity),
            help_("the solve reports `stationary`, not `optimal`; mark a convex loss with "
                  "`@external_loss(convex=True)` if it is one"),
        )
    return ExternalCheck(
        adapter=contract.name,
        adapter_version=contract.version,
        requirement=item.adapter_version,
        reference=ext.reference,
        data_path=paths["data"],
        data=tuple(sorted(data.items())),
        search_path=str(base),
        convex=bool(problem.convex),
        convexity=problem.convexity,
        init=tuple((v.name, np.asarray(init[v.name], dtype=np.float64)) for v in layout.vars) if paths["init"] else (),
    )


def _read(path: str, base: Path, ctx: ExprContext, sink: DiagnosticSink, span: Any) -> dict[str, np.ndarray] | None:
    """The arrays of an external loss's file (``{}`` for none), read under ``load()``'s file gate."""
    from catopt_dsl.adapters.api import AdapterError, read_data

    if not path:
        return {}
    checked = check_file(base / path, ctx.folders, limits.MAX_DATA_BYTES)
    if isinstance(checked, ReadError):
        code = {"outside": ErrorCode.LOAD_OUTSIDE, "missing": ErrorCode.LOAD_MISSING}.get(
            checked.kind.value, ErrorCode.LOAD_UNREADABLE
        )
        sink.error(code, f"file `{path}` of the external loss: {checked.reason}", span, note("paths are relative to the spec's folder"))
        return None
    try:
        return read_data(checked)
    except AdapterError as exc:
        sink.error(ErrorCode.LOAD_UNREADABLE, f"file `{path}`: {str(exc).split(': ', 1)[-1]}", span)
        return None
