"""Finding adapters: the entry-point group ``catopt.adapters``, version requirements, placement.

An installed distribution publishes an adapter with one line of packaging metadata::

    [project.entry-points."catopt.adapters"]
    torch = "catopt_dsl.adapters.torch_adapter:adapter"

The entry point's name must equal the contract's name; its object is an adapter instance (or a
class / zero-argument factory returning one). catoptc's own adapters are registered exactly so
(see pyproject.toml): a third party's adapter is a peer, not a special case.

A spec names an adapter with an optional version requirement, ``via torch >= 1.0`` or
``on cuda``; :func:`resolve` answers with the adapter or a message that lists what is installed
and how to install what is missing (the checker turns it into a diagnostic). Requirements use
PEP 440 specifiers (``>= 1.0``, ``~= 1.2``, ``== 1.*``, ``>= 1, < 2``) through ``packaging``,
and constrain the *adapter's* version (its contract's semver), not the framework's.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from catopt_dsl.adapters.api import (
    Adapter,
    AdapterError,
    AdapterUnavailable,
    FrameworkAdapter,
    HardwareAdapter,
    api_compatible,
    contract_problems,
)

__all__ = [
    "GROUP",
    "Installed",
    "Placement",
    "Requirement",
    "Resolution",
    "discover",
    "get",
    "parse_requirement",
    "place",
    "resolve",
]

GROUP = "catopt.adapters"

Status = Literal["ok", "unavailable", "incompatible", "broken", "conflict"]


@dataclass(frozen=True, eq=False)
class Installed:
    """One entry point of the group, loaded: the adapter (when it loaded) and its status."""

    name: str
    target: str  # "module:attr" of the entry point
    distribution: str  # "name version" of the distribution that registered it, or "?"
    status: Status
    message: str
    adapter: Adapter | None

    @property
    def version(self) -> str:
        return self.adapter.contract.version if self.adapter is not None else "?"

    @property
    def kind(self) -> str:
        return self.adapter.contract.kind if self.adapter is not None else "?"


def _distribution(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?"
    return f"{dist.metadata['Name']} {dist.version}"


def _load(ep: Any) -> tuple[Adapter | None, Status, str]:
    try:
        obj = ep.load()
    except Exception as exc:
        return None, "broken", f"cannot load `{ep.value}`: {type(exc).__name__}: {exc}"
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, Adapter)):
        try:
            obj = obj()
        except Exception as exc:
            return None, "broken", f"`{ep.value}` is callable but calling it raised {type(exc).__name__}: {exc}"
    if not isinstance(obj, (FrameworkAdapter, HardwareAdapter)):
        return None, "broken", (
            f"`{ep.value}` is a {type(obj).__name__}, not a FrameworkAdapter or HardwareAdapter instance"
        )
    contract = getattr(obj, "contract", None)
    problems = contract_problems(contract)
    if problems or contract is None:
        incompatible = contract is not None and not api_compatible(getattr(contract, "api_version", ""))
        return None, "incompatible" if incompatible else "broken", "; ".join(problems)
    if contract.name != ep.name:
        return None, "broken", f"entry point `{ep.name}` names an adapter whose contract says `{contract.name}`"
    if (contract.kind == "framework") != isinstance(obj, FrameworkAdapter):
        return None, "broken", f"contract says kind `{contract.kind}` but the object is a {type(obj).__name__}"
    try:
        avail = obj.availability()
    except Exception as exc:
        return obj, "unavailable", f"availability check raised {type(exc).__name__}: {exc}"
    if not avail.ok:
        return obj, "unavailable", avail.reason
    return obj, "ok", ""


def discover() -> tuple[Installed, ...]:
    """Every adapter registered in the group, loaded and checked, sorted by name.

    Two entry points with one name (two distributions both claiming ``torch``) are both reported
    with status ``conflict``: which one a spec meant cannot be guessed.
    """
    eps = sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: (e.name, e.value))
    counts: dict[str, int] = {}
    for ep in eps:
        counts[ep.name] = counts.get(ep.name, 0) + 1
    out = []
    seen: set[tuple[str, str]] = set()
    for ep in eps:
        if (ep.name, ep.value) in seen:  # one distribution found twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        adapter, status, message = _load(ep)
        if counts[ep.name] > 1 and len({e.value for e in eps if e.name == ep.name}) > 1:
            others = ", ".join(e.value for e in eps if e.name == ep.name and e.value != ep.value)
            status, message = "conflict", f"`{ep.name}` is also registered by {others}"
        out.append(Installed(ep.name, ep.value, _distribution(ep), status, message, adapter))
    return tuple(out)


def _installed_summary(found: Sequence[Installed]) -> str:
    if not found:
        return (
            f"no adapters are installed (the entry-point group `{GROUP}` is empty; "
            "reinstall catopt-dsl with `pip install -e .` or `pip install catopt-dsl`)"
        )
    return "installed adapters: " + ", ".join(
        f"{i.name} {i.version} ({i.kind}{'' if i.status == 'ok' else ', ' + i.status})" for i in found
    )


def get(name: str) -> Adapter:
    """The installed adapter ``name`` (raises :class:`AdapterError`, listing what is installed)."""
    found = discover()
    for i in found:
        if i.name == name:
            if i.adapter is None or i.status in ("broken", "conflict", "incompatible"):
                raise AdapterError(f"adapter `{name}` is installed but {i.status}: {i.message}")
            return i.adapter
    close = difflib.get_close_matches(name, [i.name for i in found], n=1)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    raise AdapterError(f"no adapter `{name}` is installed{hint} ({_installed_summary(found)})")


# ---------------------------------------------------------------------------------------------
# Requirements
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """``NAME [SPECIFIERS]``: an adapter name and a PEP 440 version specifier set (may be empty)."""

    name: str
    specifier: str = ""

    def __str__(self) -> str:
        return f"{self.name} {self.specifier}".strip()

    def admits(self, version: str) -> bool:
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version

        return SpecifierSet(self.specifier).contains(Version(version), prereleases=True)


def parse_requirement(text: str) -> Requirement:
    """Parse ``"torch"``, ``"torch >= 1.0"``, ``"torch >=1.0, <2"`` (raises :class:`AdapterError`)."""
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as Pep508

    try:
        req = Pep508(text)
    except InvalidRequirement as exc:
        raise AdapterError(f"`{text}` is not an adapter requirement (write e.g. `torch >= 1.0`): {exc}") from exc
    if req.extras or req.url or req.marker:
        raise AdapterError(f"`{text}`: an adapter requirement is a name and version specifiers only")
    return Requirement(req.name, str(req.specifier))


@dataclass(frozen=True, eq=False)
class Resolution:
    """What :func:`resolve` found: the adapter, or why not (``message``) and what to do (``help``)."""

    requirement: Requirement
    adapter: Adapter | None
    message: str = ""
    help: str = ""

    @property
    def ok(self) -> bool:
        return self.adapter is not None


def resolve(requirement: str | Requirement, kind: str | None = None) -> Resolution:
    """Resolve a spec's ``via``/``on`` requirement against the installed adapters.

    ``kind`` (``"framework"`` for ``via``, ``"hardware"`` for ``on``) is checked too. An adapter
    that is installed but unavailable here (no GPU) still resolves: availability is a property of
    the machine that runs the plan, not of the spec; :func:`place` deals with it.
    """
    req = parse_requirement(requirement) if isinstance(requirement, str) else requirement
    found = discover()
    match = [i for i in found if i.name == req.name]
    summary = _installed_summary(found)
    if not match:
        close = difflib.get_close_matches(req.name, [i.name for i in found], n=1)
        did = f"did you mean `{close[0]}`? " if close else ""
        return Resolution(
            req, None, f"no adapter `{req.name}` is installed",
            f"{did}{summary}; an adapter is a package registering an entry point in `{GROUP}` (docs/adapters.md)",
        )
    entry = match[0]
    if entry.adapter is None or entry.status in ("broken", "conflict", "incompatible"):
        return Resolution(req, None, f"adapter `{req.name}` is installed but {entry.status}: {entry.message}", summary)
    contract = entry.adapter.contract
    if kind is not None and contract.kind != kind:
        where = "`via` names a framework adapter" if kind == "framework" else "`on` names a hardware adapter"
        return Resolution(req, None, f"adapter `{req.name}` is a {contract.kind} adapter; {where}", summary)
    if req.specifier and not req.admits(contract.version):
        return Resolution(
            req, None, f"adapter `{req.name}` {contract.version} is installed, but the spec asks for `{req}`",
            f"install a version that satisfies it ({entry.distribution} registers {req.name} {contract.version})"
            + (f": {contract.install}" if contract.install else ""),
        )
    return Resolution(req, entry.adapter)


# ---------------------------------------------------------------------------------------------
# Placement with fallback
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    hardware: str  # the hardware adapter that took the work
    device: str  # the framework's device string, e.g. "cuda:0"
    notes: tuple[str, ...] = ()  # why earlier choices were passed over


def place(framework: str, preferences: Sequence[str], index: int = 0) -> Placement:
    """Place ``framework`` work on the first hardware adapter in ``preferences`` that can take it.

    ``preferences`` is the plan's order (``("cuda", "cpu")``: the object's ``on cuda``, falling back
    to the CPU where the plan allows it). Each one passed over leaves a note saying why, so the run
    reports "cuda unavailable: torch 2.13.0+cpu sees no CUDA device; placed on cpu" instead of a
    silent change of device. Raises :class:`AdapterUnavailable` when none can.
    """
    notes: list[str] = []
    for name in preferences:
        try:
            hw = get(name)
            if not isinstance(hw, HardwareAdapter):
                notes.append(f"`{name}` is not a hardware adapter")
                continue
            device = hw.placement(framework, index)
        except AdapterError as exc:
            notes.append(str(exc))
            continue
        return Placement(name, device, tuple(notes))
    raise AdapterUnavailable(f"no hardware adapter can take {framework} work: " + "; ".join(notes))

