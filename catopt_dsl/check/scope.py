"""Symbols and scopes for expression checking.

A :class:`Scope` maps names to the three kinds of things an expression can mention:

* :class:`ParamSymbol` -- a constant with a known value (``value`` is ``None`` when evaluating it
  failed; that failure was already reported, so later uses stay silent instead of cascading),
* :class:`VarSymbol` -- an optimisation variable (always ``float``),
* :class:`IndexSymbol` -- a family index such as ``i`` in ``site[i in 0..9]``; while checking one
  member it is a known integer constant.

Scopes chain: a family member's scope holds ``i`` and has the object's scope as its parent, so one
object scope is shared by every member and only the tiny index scope is rebuilt per member.

:class:`ExprContext` carries what evaluation of ``load(...)`` needs: the spec's folder, the extra
folders the user allowed with ``--allow-path``, and a cache of loaded files keyed by resolved path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from catopt_dsl import limits
from catopt_dsl.files import Folders
from catopt_dsl.span import Span


@dataclass(frozen=True, eq=False)
class ParamSymbol:
    """A named constant. ``dtype`` is ``"float" | "int" | "bool"``; ``value`` has exactly ``shape``."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    value: np.ndarray | None  # None if it failed to evaluate (already reported)
    span: Span


@dataclass(frozen=True)
class VarSymbol:
    """An optimisation variable (continuous; integer variables are rejected by ``check_var``)."""

    name: str
    shape: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class IndexSymbol:
    """A family index bound to one member's integer value."""

    name: str
    value: int
    span: Span


Symbol = Union[ParamSymbol, VarSymbol, IndexSymbol]


class Scope:
    """A chain of name -> symbol dictionaries; lookups walk outwards through ``parent``."""

    def __init__(self, parent: Scope | None = None) -> None:
        self.parent = parent
        self._symbols: dict[str, Symbol] = {}

    def define(self, sym: Symbol) -> Symbol | None:
        """Add ``sym`` to this level.

        Returns the symbol already defined under that name *at this level* (and keeps it, so the
        first definition wins and the caller can report E0102), or ``None`` when the name was new.
        Shadowing a name of a parent scope is allowed.
        """
        existing = self._symbols.get(sym.name)
        if existing is not None:
            return existing
        self._symbols[sym.name] = sym
        return None

    def lookup(self, name: str) -> Symbol | None:
        scope: Scope | None = self
        while scope is not None:
            sym = scope._symbols.get(name)
            if sym is not None:
                return sym
            scope = scope.parent
        return None

    def names(self) -> list[str]:
        """Every visible name, sorted (deterministic did-you-mean suggestions)."""
        out: set[str] = set()
        scope: Scope | None = self
        while scope is not None:
            out.update(scope._symbols)
            scope = scope.parent
        return sorted(out)

    def child(self) -> Scope:
        """A new empty scope whose parent is this one."""
        return Scope(self)

    def __contains__(self, name: str) -> bool:
        return self.lookup(name) is not None


@dataclass(frozen=True)
class ExprContext:
    """Where ``load(...)`` paths are resolved and which folders they may reach.

    ``cache`` maps ``("load", resolved_path)`` to the outcome of loading that file, so a family of
    1,000 members that indexes one file loads (and, on failure, diagnoses) it once.
    """

    spec_dir: Path
    allow_paths: tuple[Path, ...] = ()
    # Folder of each spec file by its display name: `load()` in an imported spec resolves against
    # the folder of the file that says it, not the root spec's.
    file_dirs: Mapping[str, Path] = field(default_factory=dict, compare=False)
    cache: dict[Any, Any] = field(default_factory=dict, compare=False)
    _folders: list[Folders] = field(default_factory=list, compare=False, repr=False)
    # Constant-folding work left (MAX_FOLD_WORK element operations per compilation).
    _work: list[int] = field(default_factory=lambda: [limits.MAX_FOLD_WORK], compare=False, repr=False)

    def charge(self, work: int) -> bool:
        """Spend ``work`` element operations of constant folding; False once the budget is spent."""
        if work > self._work[0]:
            self._work[0] = 0
            return False
        self._work[0] -= work
        return True

    @property
    def folders(self) -> Folders:
        """Where ``load()`` may read: the root spec's folder and the ``--allow-path`` folders (the
        same rule as imports, :mod:`catopt_dsl.files`). Not the folder of an imported spec: an
        import outside the root folder is refused, and one inside it adds nothing."""
        if not self._folders:
            self._folders.append(Folders.of((self.spec_dir, *self.allow_paths)))
        return self._folders[0]
