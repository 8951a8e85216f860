"""Pause Python's cyclic garbage collector while a compiler stage builds a large object graph.

The front end and the code generators allocate millions of small objects that all stay alive
until the stage returns (parse tree, AST, types, IR, view models), and every burst of allocations
triggers a collection that walks all of them again: a third of the front end's time on a
1,000-object spec and two fifths of emitting it, more the bigger the spec (mypy sets its
collector's thresholds for the same reason).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (reference counting still frees). Memory the
    stages drop is still freed at once by reference counting. Nested blocks leave the collector as
    they found it.

    Every object the block allocated is still in the youngest generation when it ends, so the
    first collection after it would walk the whole graph the stage built (a tenth of a second per
    1,000 objects compiled, more than a second for 10,000) only to promote it. The outermost block
    instead moves everything straight to the oldest generation (``gc.freeze()`` then
    ``gc.unfreeze()``, two list splices): the graph is walked no sooner than the next full
    collection, and any cycles the block left behind are collected there.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
