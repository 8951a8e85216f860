"""Compatibility modes and the rules behind them, for schemas and for adapter contracts.

The modes are Confluent's. What "can decode" means comes from this project's record encoding
(``catopt_dsl/wire/record.py``): fields are written in declaration order and identified by their
position; a reader decodes position ``i`` only if the writer's field ``i`` has exactly the reader's
element type and shape, fills a position the writer did not write from the reader's default (an
error without one), and skips positions past its own last field. A rename at the same position
decodes, but the decoder cannot tell it from a removed or reordered field whose neighbour happens
to have the same type (the value lands silently in the wrong field), so a different name at a
shared position is a violation too. ``docs/registry.md`` has the resulting table;
``tests/registry/test_compat_wire.py`` proves every rule by encoding with one version and decoding
with the other.

Contracts are compared as providers: BACKWARD means the new contract serves everyone the old one
did (same kind and API version, no platform dropped, no unit of an existing quantity changed, no
requirement added or changed); FORWARD is the same with the roles swapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from catopt_dsl.ir.model import IRSchema, IRSchemaField
from catopt_dsl.registry.contracts import Contract
from catopt_dsl.registry.errors import InvalidCompatibility

Document = IRSchema | Contract


class Mode(str, Enum):
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"

    @property
    def backward(self) -> bool:
        return self in (Mode.BACKWARD, Mode.BACKWARD_TRANSITIVE, Mode.FULL, Mode.FULL_TRANSITIVE)

    @property
    def forward(self) -> bool:
        return self in (Mode.FORWARD, Mode.FORWARD_TRANSITIVE, Mode.FULL, Mode.FULL_TRANSITIVE)

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @classmethod
    def parse(cls, text: str) -> Mode:
        try:
            return cls(text.strip().upper())
        except (ValueError, AttributeError):
            valid = ", ".join(m.value for m in cls)
            raise InvalidCompatibility(f"Invalid compatibility level {text!r}. Valid values are {valid}") from None


DEFAULT_MODE = Mode.BACKWARD

#: What each direction promises, quoted in diagnostics.
RULES: dict[str, str] = {
    "BACKWARD": "a reader of the new version must decode records written with the old one",
    "FORWARD": "a reader of the old version must decode records written with the new one",
}
CONTRACT_RULES: dict[str, str] = {
    "BACKWARD": "the new contract must serve every consumer of the old one",
    "FORWARD": "the old contract must serve every consumer of the new one",
}


@dataclass(frozen=True)
class Violation:
    """One broken rule: which field, which two versions, which mode and direction, and why."""

    subject: str
    field: str  # the field (schema) or contract member (``platforms``, ``units.memory``) at fault
    new: str  # label of the version being checked, e.g. ``v3`` or ``1.4.0``
    old: str  # label of the registered version it was compared with
    old_version: int  # that version's number in the subject
    mode: Mode
    direction: str  # "BACKWARD" or "FORWARD": the half of the mode that failed
    reason: str
    contract: bool = False

    def message(self) -> str:
        return f"`{self.subject}` {self.new} is not {self.mode.value} compatible with {self.old}: {self.reason}"

    def rule(self) -> str:
        rules = CONTRACT_RULES if self.contract else RULES
        transitive = " (every earlier version)" if self.mode.transitive else " (the latest version)"
        return f"{self.mode.value}{transitive}: {rules[self.direction]}"


def _type(f: IRSchemaField) -> str:
    return f.dtype + (f"[{', '.join(map(str, f.shape))}]" if f.shape else "")


def read_problems(reader: IRSchema, writer: IRSchema) -> list[tuple[int, str]]:
    """Why a reader of ``reader`` cannot decode records written with ``writer``: (position, reason)."""
    r_label, w_label = f"v{reader.version}", f"v{writer.version}"
    out: list[tuple[int, str]] = []
    shared = min(len(reader.fields), len(writer.fields))
    for i in range(shared):
        r, w = reader.fields[i], writer.fields[i]
        if r.name != w.name:
            out.append((i, (
                f"field {i} is `{w.name}` in {w_label} but `{r.name}` in {r_label}; records carry fields by "
                f"position, so `{w.name}` would be read as `{r.name}` (a field renamed, reordered, or removed "
                "before the last one)"
            )))
        elif r.dtype != w.dtype:
            out.append((i, (f"field {i} `{r.name}` is `{_type(w)}` in {w_label} but `{_type(r)}` in {r_label}; "
                           "the decoder needs the same element type")))
        elif tuple(r.shape) != tuple(w.shape):
            out.append((i, (f"field {i} `{r.name}` is `{_type(w)}` in {w_label} but `{_type(r)}` in {r_label}; "
                           "the decoder needs the same shape")))
    for i in range(len(writer.fields), len(reader.fields)):
        r = reader.fields[i]
        if r.default is None:
            out.append((i, f"field {i} `{r.name}` of {r_label} has no default, and {w_label} records do not carry it"))
    return out


def serve_problems(provider: Contract, consumer_of: Contract) -> list[tuple[str, str]]:
    """Why ``provider`` cannot stand in for ``consumer_of`` (a consumer written against it)."""
    p, c = provider, consumer_of
    out: list[tuple[str, str]] = []
    if p.kind != c.kind:
        out.append(("kind", f"kind is `{p.kind}` in {p.version} but `{c.kind}` in {c.version}"))
    if p.api_version != c.api_version:
        out.append(("api_version", f"api_version is {p.api_version} in {p.version} but {c.api_version} in {c.version}"))
    missing = [x for x in c.platforms if x not in p.platforms]
    if missing:
        out.append(("platforms", f"{p.version} does not support platform(s) {', '.join(f'`{x}`' for x in missing)} of {c.version}"))
    p_units = dict(p.units)
    for quantity, unit in c.units:
        if quantity not in p_units:
            out.append((f"units.{quantity}", f"{p.version} drops quantity `{quantity}` ({unit}) of {c.version}"))
        elif p_units[quantity] != unit:
            out.append((f"units.{quantity}", (f"quantity `{quantity}` is in `{p_units[quantity]}` in {p.version} "
                                             f"but in `{unit}` in {c.version}")))
    c_reqs = dict(c.requirements)
    for name, spec in p.requirements:
        if name not in c_reqs:
            out.append((f"requirements.{name}", f"{p.version} adds requirement `{name} {spec}` that {c.version} did not have"))
        elif c_reqs[name] != spec:
            out.append((f"requirements.{name}", f"requirement `{name}` is `{spec}` in {p.version} but `{c_reqs[name]}` in {c.version}"))
    return out


def label(doc: Document) -> str:
    return f"v{doc.version}" if isinstance(doc, IRSchema) else str(doc.version)


def check_compatibility(
    subject: str, new: Document, history: Sequence[tuple[int, Document]], mode: Mode
) -> list[Violation]:
    """Violations of ``mode`` by ``new`` against ``history`` (the subject's live versions, oldest first).

    Non-transitive modes compare with the latest version only, transitive ones with every version.
    """
    if mode is Mode.NONE or not history:
        return []
    against = history if mode.transitive else history[-1:]
    out: list[Violation] = []
    for number, old in against:
        checks: list[tuple[str, list[tuple[str, str]]]] = []
        if isinstance(new, IRSchema) and isinstance(old, IRSchema):
            # A violation names the new version's field at the position (where a spec points), else the old one's.
            def name(i: int, new: IRSchema = new, old: IRSchema = old) -> str:
                return new.fields[i].name if i < len(new.fields) else old.fields[i].name

            if mode.backward:
                checks.append(("BACKWARD", [(name(i), why) for i, why in read_problems(reader=new, writer=old)]))
            if mode.forward:
                checks.append(("FORWARD", [(name(i), why) for i, why in read_problems(reader=old, writer=new)]))
        elif isinstance(new, Contract) and isinstance(old, Contract):
            if mode.backward:
                checks.append(("BACKWARD", serve_problems(provider=new, consumer_of=old)))
            if mode.forward:
                checks.append(("FORWARD", serve_problems(provider=old, consumer_of=new)))
        else:  # pragma: no cover - subjects hold one kind; the registry enforces it before this
            raise TypeError(f"cannot compare {type(new).__name__} with {type(old).__name__}")
        for direction, problems in checks:
            for fieldname, reason in problems:
                out.append(
                    Violation(subject, fieldname, label(new), label(old), number, mode, direction, reason,
                              contract=isinstance(new, Contract))
                )
    return out
