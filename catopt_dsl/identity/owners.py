"""Who owns which object of a plan: object (or family) name -> owner DID.

:class:`Owners` is the one mapping every tenancy feature reads: the signed delta-sync layer
(a frame may only report for its signer's objects), ``catoptc solve --as DID`` (a tenant sees its
own objects and the shared variables, nothing of the others) and the governance ledger. It is
filled from a JSON key-ring file today::

    {"owners": {"tenant_a": "did:key:z6Mk...", "site": "did:key:z6Mk..."}}

and from the spec (``LocalProblem tenant_a owner "did:key:..." {...}``, :meth:`Owners.from_plan`):
both produce the same ``{name: did}`` table. A key names an object (``tenant_a``,
``site[3]``) or a whole family (``site``: every ``site[i]``); an exact object binding wins over
its family's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from catopt_dsl.identity.did import validate_did

__all__ = ["Owners", "OwnersError"]



class _Result(Protocol):
    objects: dict[str, Any]


class _Owned(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def owner(self) -> str | None: ...


class _Plan(Protocol):
    @property
    def objects(self) -> Sequence[_Owned]: ...


R = TypeVar("R", bound=_Result)


class OwnersError(ValueError):
    """A key-ring file or binding that cannot be used."""


def _family(name: str) -> str | None:
    """``site`` for ``site[3]``; None for a plain object name."""
    if name.endswith("]") and "[" in name:
        return name[: name.index("[")]
    return None


@dataclass(frozen=True)
class Owners:
    """Object or family name -> the DID that owns it (see the module docs)."""

    bindings: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, did in self.bindings.items():
            if not isinstance(name, str) or not name:
                raise OwnersError(f"owner binding for {name!r}: the object name must be non-empty text")
            why = validate_did(did) if isinstance(did, str) else "not text"
            if why is not None:
                raise OwnersError(f"owner of `{name}`: {did!r} is not a usable DID: {why}")

    # -- reading ---------------------------------------------------------------------------------
    @classmethod
    def from_plan(cls, plan: _Plan) -> Owners | None:
        """The owners a spec names (``owner "did:key:..."`` on its LocalProblems), one binding per
        object (family members by their member names); None for a plan that names none."""
        table = {o.name: o.owner for o in plan.objects if o.owner is not None}
        return cls(table) if table else None

    def merged(self, other: Owners, source: str = "<owners>") -> Owners:
        """This table (a spec's) with ``other``'s bindings (a key ring's) added; a binding of ``other``
        that gives one of this table's objects another owner is an :class:`OwnersError`: the spec
        decides who owns what, a key ring can only fill in."""
        table = dict(self.bindings)
        for name, did in sorted(other.bindings.items()):
            mine = [o for o in self.bindings if o == name or _family(o) == name]
            clash = next((o for o in mine if self.bindings[o] != did), None)
            if clash is not None:
                raise OwnersError(
                    f"{source}: binds `{name}` to {did}, but the spec makes {self.bindings[clash]} the owner of `{clash}`"
                )
            if not mine:
                table[name] = did
        return Owners(table)

    @classmethod
    def from_json(cls, text: str, source: str = "<owners>") -> Owners:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OwnersError(f"{source}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        table = doc.get("owners") if isinstance(doc, dict) else None
        if not isinstance(table, dict):
            raise OwnersError(f'{source}: expected {{"owners": {{"<object or family>": "did:key:..."}}}}')
        try:
            return cls(dict(table))
        except OwnersError as exc:
            raise OwnersError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> Owners:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise OwnersError(f"{path}: cannot read the key ring: {getattr(exc, 'strerror', None) or exc}") from None
        return cls.from_json(text, str(path))

    def to_json(self) -> str:
        return json.dumps({"owners": dict(sorted(self.bindings.items()))}, indent=2) + "\n"

    # -- queries ---------------------------------------------------------------------------------
    def owner_of(self, name: str) -> str | None:
        """The DID owning object ``name`` (exact binding first, then its family's), or None."""
        did = self.bindings.get(name)
        if did is None:
            fam = _family(name)
            if fam is not None:
                did = self.bindings.get(fam)
        return did

    def objects_of(self, did: str, objects: Iterable[str]) -> tuple[str, ...]:
        """The objects among ``objects`` that ``did`` owns, in the given order."""
        return tuple(o for o in objects if self.owner_of(o) == did)

    def dids(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.bindings.values())))

    def check(self, objects: Iterable[str]) -> list[str]:
        """Problems binding this table to a plan with these objects: names that match nothing."""
        names = list(objects)
        known = set(names) | {f for f in (_family(n) for n in names) if f is not None}
        return [
            f"owner binding for `{name}`: the plan has no object or family of that name"
            for name in sorted(self.bindings)
            if name not in known
        ]

    def view(self, result: R, did: str) -> R:
        """A tenant's view of a solve result: its own objects and the shared variables only.

        Works on any dataclass with ``objects`` and ``state`` fields (a ``SolveResult``): other
        tenants' objects are removed, and so is the warm-start ``state`` and the iteration
        ``history`` (the state holds every object's x and the duals).
        """
        mine = {name: vars_ for name, vars_ in result.objects.items() if self.owner_of(name) == did}
        return replace(result, objects=mine, state=None, history=[])  # type: ignore[type-var]
