"""Did-you-mean suggestions with bounded work.

A suggestion compares an unknown name with the names in scope; done for every unknown name of a
spec with thousands of them, that is quadratic (3,000 forward references took 87 s). Two bounds:

* only the first ``MAX_SUGGESTIONS`` unknown names of a run get a suggestion (the budget lives on
  the diagnostic sink, shared with the sinks of PlanDelta checks);
* candidates are pre-filtered by length (a typo changes the length by a little) and at most
  ``_MAX_CANDIDATES`` of them, in sorted order, are compared.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from catopt_dsl.diagnostics import DiagnosticSink

_MAX_CANDIDATES = 2_000
_CUTOFF = 0.6


def suggest(name: str, candidates: Iterable[str], sink: DiagnosticSink | None = None) -> str | None:
    """The closest candidate to ``name`` (difflib ratio >= 0.6), or None; None as well once the
    sink's suggestion budget is spent."""
    if sink is not None and not sink.take_suggestion():
        return None
    # ratio = 2M / (len(a) + len(b)) <= 2 min / (len(a) + len(b)): lengths far apart cannot reach
    # the cutoff, so they are skipped without comparing.
    n = len(name)
    close = sorted({c for c in candidates if 2 * min(n, len(c)) >= _CUTOFF * (n + len(c))})
    matches = difflib.get_close_matches(name, close[:_MAX_CANDIDATES], n=1, cutoff=_CUTOFF)
    return matches[0] if matches else None

