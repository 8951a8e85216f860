"""`generated/` holds exactly what `catoptc compile` emits for `examples/`; the Python it holds works.

Set CATOPT_UPDATE_GENERATED=1 to rewrite `generated/` from the current compiler (then review the diff).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from catopt_dsl.backends.emit import emit_target
from catopt_dsl.compile import load_plan

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.cat"))
GENERATED = REPO / "generated"


def _targets() -> list[str]:
    out = ["python"]
    for t in ("rust", "cpp"):
        if importlib.util.find_spec(f"catopt_dsl.backends.{t}") is not None:
            out.append(t)
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("target", _targets())
def test_generated_is_fresh(spec: Path, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    plan = load_plan(spec.relative_to(REPO))
    fresh = tmp_path / target
    emit_target(target, plan, fresh)
    committed = GENERATED / spec.stem / target
    if os.environ.get("CATOPT_UPDATE_GENERATED"):
        emit_target(target, plan, committed)
    assert committed.is_dir(), f"generated/{spec.stem}/{target} is missing: run CATOPT_UPDATE_GENERATED=1 pytest {__file__}"
    want, got = _tree(committed), _tree(fresh)
    assert sorted(want) == sorted(got), f"generated/{spec.stem}/{target}: file set differs"
    stale = [name for name in want if want[name] != got[name]]
    assert not stale, f"generated/{spec.stem}/{target} is stale: {stale[:5]} (set CATOPT_UPDATE_GENERATED=1)"


def test_emission_is_byte_identical_across_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    plan = load_plan(Path("examples/plan_deltas.cat"))
    for target in _targets():
        emit_target(target, plan, tmp_path / "a" / target)
        emit_target(target, plan, tmp_path / "b" / target)
        assert _tree(tmp_path / "a" / target) == _tree(tmp_path / "b" / target)


RUNNER = r"""
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    mod = importlib.import_module(name)
    plan = mod.Plan()
    res = plan.solve()
    out[name] = {"status": res.status, "objective": res.objective, "module": mod.__file__}
print(json.dumps(out))
"""


def test_generated_packages_import_and_solve_like_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each generated package imports in a fresh interpreter (no spec file needed) and solves like `catoptc solve`."""
    from catopt_dsl.solver import solve

    monkeypatch.chdir(REPO)
    names = [p.stem for p in EXAMPLES]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(GENERATED / n / "python") for n in names))
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, *names], capture_output=True, text=True, env=env, cwd="/", timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in names:
        got = results[name]
        assert got["module"].startswith(str(GENERATED / name / "python"))
        ref = solve(load_plan(Path(f"examples/{name}.cat")))
        assert got["status"] == ref.status == "optimal"
        assert got["objective"] == pytest.approx(ref.objective, rel=1e-9, abs=1e-12)


def test_generated_python_passes_mypy_strict() -> None:
    pkgs = [GENERATED / p.stem / "python" / p.stem for p in EXAMPLES]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", "--cache-dir", os.devnull, *map(str, pkgs)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_generated_python_snapshot(spec: Path, snapshot: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(REPO)
    emit_target("python", load_plan(spec.relative_to(REPO)), tmp_path)
    sources = {k: v.decode() for k, v in _tree(tmp_path).items() if k.endswith(".py")}
    assert sources == snapshot
