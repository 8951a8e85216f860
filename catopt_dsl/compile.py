"""The front-end pipeline, one stage after another, each a function of the previous stage's
complete, typed result (docs/architecture.md draws it):

    parse        syntax/loader.py, syntax/parser.py    file -> AST modules (imports resolved)
    check        check/checker.py                      AST -> CheckedPlan (+ one TypeMap per scope)
    lower        ir/lower.py                           CheckedPlan -> IRPlan
    validate_ir  ir/validate.py                        IRPlan -> IRPlan (its invariants hold)
    analyze_ir   ir/analysis.py                        IRPlan -> PlanAnalysis (forms, solver classes)
    name_targets backends/naming.py                    IRPlan -> NameTables (identifiers, collisions)

Every stage reports into one sink, and the pipeline stops before the next stage when there are
errors. Consumers (the solver, the backends, the runtimes) only read what these stages produced.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from catopt_dsl.check.checker import CheckedPlan, Checker
from catopt_dsl.check.scope import ExprContext
from catopt_dsl.diagnostics import CatoptError, Diagnostic, DiagnosticSink, SourceMap
from catopt_dsl.gc_pause import gc_paused
from catopt_dsl.ir.model import IRPlan

if TYPE_CHECKING:  # later stages, imported when they run
    from catopt_dsl.backends.naming import NameTables
    from catopt_dsl.ir.analysis import PlanAnalysis
from catopt_dsl.span import Span
from catopt_dsl.syntax import ast
from catopt_dsl.syntax.loader import display_name, load_spec

# Every pass recurses over expressions, which the parser caps at a depth of 256; leave headroom for
# the frames each level costs.
if sys.getrecursionlimit() < 10_000:
    sys.setrecursionlimit(10_000)


#: the stages :func:`analyze` runs, in order
STAGES: tuple[str, ...] = ("parse", "check", "lower", "validate_ir", "analyze_ir", "name_targets")


@dataclass
class Analysis:
    sink: DiagnosticSink
    sources: SourceMap
    checked: CheckedPlan | None
    plan: IRPlan | None
    file: str
    #: what analyze_ir computed (solver classes, forms); None until the plan lowers
    ir: PlanAnalysis | None = None
    #: every spec name's identifier per target; None until the plan lowers
    names: NameTables | None = None

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.sink.sorted()

    @property
    def ok(self) -> bool:
        return not self.sink.has_errors


def analyze(
    path: str | Path, allow_paths: Sequence[str | Path] = (), lower: bool = True, text: str | None = None
) -> Analysis:
    """Run the front end on one spec file; never raises on bad input.

    ``text`` replaces the file's contents (the file need not exist); imports and ``load()`` paths
    still resolve relative to ``path``'s folder.
    """
    with gc_paused():
        return _analyze(Path(path), allow_paths, lower, text)


def _analyze(path: Path, allow_paths: Sequence[str | Path], lower: bool, text: str | None) -> Analysis:
    sink = DiagnosticSink()
    shown = display_name(path)
    loaded = load_spec(path, sink, shown, text=text, allow_paths=tuple(allow_paths))
    if loaded.root is None or sink.has_errors:
        return Analysis(sink, loaded.sources, None, None, shown)
    items: list[ast.Item] = [item for module in loaded.modules for item in module.items]
    ctx = ExprContext(
        loaded.folders.roots[0] if loaded.folders.roots else path.resolve().parent,
        tuple(Path(p).resolve() for p in allow_paths),
        file_dirs={name: p.parent for name, p in loaded.paths.items()},
    )
    checked = Checker(ctx, sink, shown).check(items)
    if sink.has_errors or not lower or not checked.objects:  # no objects: a schema library
        return Analysis(sink, loaded.sources, checked, None, shown)
    from catopt_dsl.backends.naming import name_targets, report_collisions
    from catopt_dsl.ir.analysis import analyze_ir
    from catopt_dsl.ir.lower import lower_plan  # lowering is only needed once the spec checks
    from catopt_dsl.ir.validate import validate_ir

    plan = validate_ir(lower_plan(checked, _plan_name(path), path.name, loaded.digest))
    names = name_targets(plan)
    report_collisions(names, sink, file=shown, spans=_declaration_spans(items))
    if sink.has_errors:
        return Analysis(sink, loaded.sources, checked, None, shown)
    # Classification at lowering time: every object's solver class and data are decided here,
    # once, and carried with the plan (a solve starts from them).
    return Analysis(sink, loaded.sources, checked, plan, shown, analyze_ir(plan).classify(), names)


def _declaration_spans(items: Sequence[ast.Item]) -> dict[str, Span]:
    """Where each name a backend turns into an identifier is declared (first declaration wins)."""
    spans: dict[str, Span] = {}
    for item in items:
        if isinstance(item, ast.Schema):
            spans.setdefault(f"{item.name}_v{item.version}", item.name_span)
            for f in item.fields:
                spans.setdefault(f.name, f.span)
            continue
        spans.setdefault(item.name, item.name_span)
        body = getattr(item, "body", None)
        if body is not None:
            for p in body.params:
                spans.setdefault(p.name, p.name_span)
            for v in body.vars:
                spans.setdefault(v.name, v.name_span)
    return spans


def _plan_name(path: Path) -> str:
    return path.stem


def check_file(path: str | Path, allow_paths: Sequence[str | Path] = ()) -> list[Diagnostic]:
    """Every diagnostic (errors and warnings) for a spec, sorted by position.

    Lowers too: name collisions in the generated code are only visible on the IR.
    """
    return analyze(path, allow_paths).diagnostics


def load_plan(path: str | Path, allow_paths: Sequence[str | Path] = ()) -> IRPlan:
    """Check and lower a spec; raises :class:`CatoptError` carrying the diagnostics if it has errors."""
    a = analyze(path, allow_paths)
    if a.plan is None:
        raise CatoptError(a.sink.errors(), a.sources)
    return a.plan


