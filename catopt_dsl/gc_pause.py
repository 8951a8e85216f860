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
    stages drop is still freed at once by reference counting; any cycles they leave behind are
    collected by the first collection after the block. Nested blocks leave the collector as they
    found it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
