"""The import graph between packages follows the stages (docs/architecture.md).

A package may import the shared base modules and packages of an earlier stage, never a later one:
the checker does not import the IR or the backends, the backends do not import the solver, and
nothing outside ``check/`` touches the checker's private typer class.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "catopt_dsl"

#: modules every stage may use: spans, error codes, limits, the file gate, diagnostics, resources,
#: the collector pause
BASE = {"__init__", "__version__", "__main__", "span", "errors", "limits", "files", "diagnostics", "resources",
        "gc_pause"}

#: stage -> rank; a package may import only packages of a lower rank (or BASE)
RANK = {
    # the plug-in interface: it imports no stage, so the checker (`via`, external losses) and the
    # solver (adapter prox steps) may call it
    "adapters": 0,
    "syntax": 1,
    "identity": 1,  # standard library and cryptography only: the checker validates `owner` DIDs with it
    "check": 2,
    "ir": 3,
    "backends": 4,
    "solver": 4,
    "wire": 4,
    "sync": 5,
    "runtime": 6,
    "compile": 7,
    "bindings": 8,
    "registry": 8,
    "authoring": 8,
    "ledger": 8,
    "plotting": 5,
    "demo": 9,
    "cli": 10,
}


def _imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for f in PKG.rglob("*.py"):
        pkg = f.relative_to(PKG).with_suffix("").parts[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            mods: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("catopt_dsl"):
                mods = [node.module] if node.module != "catopt_dsl" else [f"catopt_dsl.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names if a.name.startswith("catopt_dsl")]
            for m in mods:
                parts = m.split(".")
                target = parts[1] if len(parts) > 1 else "__init__"
                if target != pkg:
                    edges[pkg].add(target)
    return edges


def test_every_package_has_a_rank() -> None:
    found = {f.relative_to(PKG).with_suffix("").parts[0] for f in PKG.rglob("*.py")} - BASE
    found.discard("_native")  # static sources that ship with the package, not Python stages
    assert found <= set(RANK), sorted(found - set(RANK))


def test_no_package_imports_a_later_stage() -> None:
    wrong = [
        f"{a} (stage {RANK.get(a)}) imports {b} (stage {RANK.get(b)})"
        for a, targets in sorted(_imports().items())
        if a not in BASE
        for b in sorted(targets)
        if b not in BASE and RANK.get(b, 99) >= RANK.get(a, 0)
    ]
    assert not wrong, "\n".join(wrong)


def test_named_boundaries() -> None:
    edges = _imports()
    assert not edges["check"] & {"ir", "backends", "solver"}
    assert "solver" not in edges["backends"]
    for name in BASE - {"__init__", "__main__"}:
        assert not edges.get(name, set()) - BASE, (name, edges.get(name))


def test_the_checkers_typer_stays_private() -> None:
    outside = [
        str(f.relative_to(PKG))
        for f in PKG.rglob("*.py")
        if f.relative_to(PKG).parts[0] != "check" and "_Checker" in f.read_text(encoding="utf-8")
    ]
    assert not outside, outside


def test_the_native_targets_share_only_the_native_model() -> None:
    """rust.py and cpp.py are two dialects of one native model (backends/native.py): what both
    need lives there, so neither imports the other (the copy issue 10 removed stays removed)."""
    for this, other in (("rust", "cpp"), ("cpp", "rust")):
        tree = ast.parse((PKG / "backends" / f"{this}.py").read_text(encoding="utf-8"))
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        } | {f"catopt_dsl.backends.{a.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and node.module == "catopt_dsl.backends" for a in node.names}
        assert f"catopt_dsl.backends.{other}" not in imported, f"backends/{this}.py imports backends/{other}.py"
