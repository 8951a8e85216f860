"""Fault specs as an operator writes them (``solve --fault ...``), turned into a :class:`FaultPlan`.

Rehearsing failures is how one learns what a run does under them. Each spec is one of::

    drop=P  duplicate=P  reorder=P  delay=P  corrupt=P     per-message probabilities in [0, 1]
    crash=OBJECT@ROUND          the node hosting OBJECT dies at that coordinator round
    restart=OBJECT+TICKS        ... and a new process starts for it TICKS ticks later
    join=OBJECT@ROUND           the node starts only at that round (a late joiner)
    hang=OBJECT@ROUND[+TICKS]   the node stops answering (for TICKS ticks in this process)
    partition=OBJECT@ROUND[+TICKS]  every frame to or from the node is lost (for TICKS ticks)
    lag=OBJECT+TICKS            every frame the node sends arrives TICKS ticks late

OBJECT is an object name (``tenant_b``, ``site[3]``); the fault hits the node hosting it (with
batched family members, the whole batch).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields

from catopt_dsl.sync.transport import FaultPlan

__all__ = ["FaultSpecError", "parse_faults"]

_PROB = ("drop", "duplicate", "reorder", "delay", "corrupt")
_AT = re.compile(r"^(?P<obj>[^@+]+)@(?P<round>\d+)(?:\+(?P<ticks>\d+))?$")
_PLUS = re.compile(r"^(?P<obj>[^@+]+)\+(?P<ticks>\d+)$")


class FaultSpecError(ValueError):
    """A fault spec that does not parse or names an object the plan does not have."""


def parse_faults(specs: Sequence[str], assignment: Mapping[int, Sequence[str]]) -> FaultPlan:
    """The :class:`FaultPlan` of ``specs`` (module docstring) for nodes cut as ``assignment``."""
    node_of = {name: nid for nid, names in assignment.items() for name in names}
    probs: dict[str, float] = {}
    maps: dict[str, dict[int, int]] = {f.name: {} for f in fields(FaultPlan) if f.name not in (*_PROB, "max_delay")}

    def node(obj: str, spec: str) -> int:
        nid = node_of.get(obj.strip())
        if nid is None:
            known = ", ".join(sorted(node_of)[:6]) + (" ..." if len(node_of) > 6 else "")
            raise FaultSpecError(f"--fault {spec!r}: no object `{obj.strip()}` in this plan (objects: {known})")
        return nid

    for spec in specs:
        kind, eq, value = spec.partition("=")
        kind = kind.strip()
        if not eq:
            raise FaultSpecError(f"--fault {spec!r}: expected KIND=VALUE (e.g. crash=tenant_b@20, drop=0.2)")
        if kind in _PROB:
            try:
                p = float(value)
            except ValueError:
                raise FaultSpecError(f"--fault {spec!r}: {kind} takes a probability") from None
            if not 0.0 <= p <= 1.0:
                raise FaultSpecError(f"--fault {spec!r}: {kind} must be in [0, 1]")
            probs[kind] = p
        elif kind in ("crash", "join", "hang", "partition"):
            m = _AT.match(value.strip())
            if m is None or (m["ticks"] is not None and kind in ("crash", "join")):
                form = "OBJECT@ROUND" + ("[+TICKS]" if kind in ("hang", "partition") else "")
                raise FaultSpecError(f"--fault {spec!r}: {kind} takes {form}")
            nid = node(m["obj"], spec)
            maps[f"{kind}_at"][nid] = int(m["round"])
            if m["ticks"] is not None:
                maps[f"{kind}_ticks"][nid] = int(m["ticks"])
        elif kind in ("restart", "lag"):
            m = _PLUS.match(value.strip())
            if m is None:
                raise FaultSpecError(f"--fault {spec!r}: {kind} takes OBJECT+TICKS")
            maps["restart_after" if kind == "restart" else "lag"][node(m["obj"], spec)] = int(m["ticks"])
        else:
            kinds = ", ".join((*_PROB, "crash", "restart", "join", "hang", "partition", "lag"))
            raise FaultSpecError(f"--fault {spec!r}: unknown kind `{kind}` (one of {kinds})")
    try:
        return FaultPlan(**probs, **maps)  # type: ignore[arg-type]
    except ValueError as exc:
        raise FaultSpecError(f"--fault: {exc}") from None
