"""`generated/` holds exactly what `catoptc compile` emits for `examples/`; the Python it holds works.

Set CATOPT_UPDATE_GENERATED=1 to rewrite `generated/` from the current compiler (then review the diff).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
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


def _recipe() -> str:
    text = (REPO / "docs" / "codegen.md").read_text(encoding="utf-8")
    after = text.split("<!-- golden-test-recipe -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_the_documented_golden_test_recipe_works(tmp_path: Path) -> None:
    """docs/codegen.md's recipe for users, run as written: it writes the golden copy, then passes,
    then fails once a golden file changes."""
    shutil.copy(REPO / "examples" / "plan_deltas.cat", tmp_path / "my_plan.cat")
    (tmp_path / "test_golden.py").write_text(_recipe(), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("UPDATE_GOLDEN", None)

    def pytest_run(**extra: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_golden.py"]
        return subprocess.run(cmd, check=False, cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True, timeout=300)

    first = pytest_run(UPDATE_GOLDEN="1")
    assert first.returncode == 0, first.stdout[-3000:]
    golden = tmp_path / "golden" / "my_plan"
    assert (golden / "rust" / "src" / "runtime.rs").is_file() and (golden / "cpp" / "CMakeLists.txt").is_file()
    again = pytest_run()
    assert again.returncode == 0, again.stdout[-3000:]
    lib = golden / "rust" / "src" / "lib.rs"
    lib.write_text(lib.read_text(encoding="utf-8") + "// edited\n", encoding="utf-8")
    stale = pytest_run()
    assert stale.returncode == 1 and "src/lib.rs" in stale.stdout, stale.stdout[-3000:]
