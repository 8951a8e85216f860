"""``catoptc check --registry``: the schemas a plan's morphisms carry, checked against a registry.

A Morphism carrying ``Allocation v2`` to a shared block whose readers are registered at
``Allocation v1`` is accepted only if the subject's compatibility mode accepts v2 after v1 (the
same check registering v2 would meet). The results are diagnostics in the checker's style, at the
``carries Allocation v2`` of each morphism (or the ``migrate`` of a PlanDelta):

* E0801 (error): a compatibility violation, naming the field, both versions and the rule;
* E0802 (error): the registry holds this version with other content, or soft-deleted it;
* E0803 (warning): the registry has never seen this schema's subject;
* E0804 (error): the declared version can never be registered (the subject's next is another).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from catopt_dsl.diagnostics import Diagnostic, Severity, help_, note
from catopt_dsl.errors import ErrorCode
from catopt_dsl.ir.model import IRPlan, IRSchema
from catopt_dsl.registry.registry import Assessment, RegistryView
from catopt_dsl.span import Span

#: (PlanDelta name or "", morphism name) -> span of the schema reference
Spans = Mapping[tuple[str, str], Span]


def assessment_diagnostics(
    a: Assessment, doc: IRSchema, span: Span, field_span: Callable[[str], Span] | None = None, where: str = ""
) -> list[Diagnostic]:
    """The diagnostics one assessment stands for (none when it is fine)."""
    what = f"`{doc.name} v{doc.version}`"
    prefix = f"{where}: " if where else ""
    if a.status == "unregistered":
        return [Diagnostic(ErrorCode.REGISTRY_UNREGISTERED, Severity.WARNING,
                           f"{prefix}schema `{doc.name}` is not in the registry, so nothing checks its readers",
                           span, (help_("register it with `catoptc schema register FILE`"),))]
    if a.status == "differs":
        assert a.registered is not None
        return [Diagnostic(ErrorCode.REGISTRY_MISMATCH, Severity.ERROR,
                           f"{prefix}{what} differs from version {doc.version} registered for subject `{a.subject}`",
                           span, (note("registered versions are immutable: " + _first_difference(a.registered.document, doc)),
                                  help_(f"declare the change as a new version, or use the registered {what}")))]
    if a.status == "deleted":
        return [Diagnostic(ErrorCode.REGISTRY_MISMATCH, Severity.ERROR,
                           f"{prefix}version {doc.version} of `{a.subject}` was deleted from the registry", span,
                           (help_("move to a live version (`catoptc schema list`)"),))]
    if a.status == "sequence":
        return [Diagnostic(ErrorCode.REGISTRY_SEQUENCE, Severity.ERROR,
                           f"{prefix}{what} cannot be registered: the next version of subject `{a.subject}` is "
                           f"{a.next_version}", span,
                           (note("a schema's declared version is its registry version; versions are never reused or skipped"),))]
    out = []
    for v in a.violations:
        at = field_span(v.field) if field_span is not None else span
        out.append(Diagnostic(ErrorCode.REGISTRY_INCOMPATIBLE, Severity.ERROR, prefix + v.message(), at,
                              (note(f"rule {v.rule()}"),
                               help_(f"subject `{v.subject}` is in {v.mode.value} mode (`catoptc registry config`)"))))
    return out


def _first_difference(old: object, new: IRSchema) -> str:
    if not isinstance(old, IRSchema):  # pragma: no cover - schema subjects only hold schemas
        return "the content differs"
    for i in range(max(len(old.fields), len(new.fields))):
        a = old.fields[i] if i < len(old.fields) else None
        b = new.fields[i] if i < len(new.fields) else None
        if a != b:
            show = lambda f: "nothing" if f is None else f"`{f.name}: {f.dtype}{list(f.shape) if f.shape else ''}" + (
                f" = {f.default}`" if f.default is not None else "`")
            return f"field {i} is {show(a)} in the registry but {show(b)} here"
    return "the content differs"


def check_plan(plan: IRPlan, registry: RegistryView, spans: Spans | None = None) -> list[Diagnostic]:
    """Diagnostics for every schema version a morphism of ``plan`` (or of one of its PlanDeltas) carries.

    The plan's declared versions of each such subject are assessed in order, as if registered, so
    ``v3`` is judged after the spec's ``v2`` even when only ``v1`` is registered yet.
    """
    spans = spans or {}
    uses: list[tuple[str, str, str, int]] = [("", m.name, m.schema, m.version) for m in plan.morphisms]
    seen = {(m.schema, m.version) for m in plan.morphisms}
    for d in plan.deltas:
        for m in d.result.morphisms:
            if (m.schema, m.version) not in seen:
                uses.append((d.name, m.name, m.schema, m.version))
    carried = {name for _, _, name, _ in uses}
    docs = [s for s in plan.schemas if s.name in carried]  # sorted by (name, version)
    verdicts = dict(zip(((s.name, s.version) for s in docs), registry.assess(docs)))
    out: list[Diagnostic] = []
    keys: set[tuple[str, str, Span]] = set()
    warned: set[str] = set()
    for delta, morphism, name, version in uses:
        span = spans.get((delta, morphism)) or Span.unknown(plan.source)
        where = f"PlanDelta `{delta}`" if delta else ""
        verdict = verdicts[(name, version)]
        if verdict.status == "unregistered":  # one warning per subject, at its first use
            if name in warned:
                continue
            warned.add(name)
        for diag in assessment_diagnostics(verdict, plan.schema(name, version), span, where=where):
            key = (diag.code.value, diag.message, diag.span)
            if key not in keys:  # family members share their declaration's span
                keys.add(key)
                out.append(diag)
    return out


def morphism_spans(checked: object) -> dict[tuple[str, str], Span]:
    """Where each morphism (and each PlanDelta's morphism) names its schema, from a CheckedPlan."""
    out: dict[tuple[str, str], Span] = {}
    for m in getattr(checked, "morphisms", ()):
        out[("", m.name)] = m.decl.schema_span
    for d in getattr(checked, "deltas", ()):
        if d.result is not None:
            for m in d.result.morphisms:
                out[(d.name, m.name)] = m.decl.schema_span
    return out


def check_analyses(analyses: Sequence[object], target: str) -> None:
    """Add registry diagnostics to each analysis that lowered (the `check --registry` hook).

    Raises :class:`~catopt_dsl.registry.errors.RegistryError` if the registry cannot be opened.
    """
    from catopt_dsl.registry.registry import open_registry

    with open_registry(target, create=False) as registry:
        for a in analyses:
            plan = getattr(a, "plan", None)
            if plan is None:
                continue
            for d in check_plan(plan, registry, morphism_spans(getattr(a, "checked", None))):
                a.sink.report(d.code, d.message, d.span, *d.notes, severity=d.severity)  # type: ignore[attr-defined]
