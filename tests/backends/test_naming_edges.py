"""The naming cases that used to break generated code (identifiers starting with a digit, names
of generated helpers, int64 family ends, schema versions up to u32, an infeasible coupling) give
Python packages that import and solve. The Rust and C++ builds of the same specs run in
tests/native/test_native_build.py (NATIVE_SPECS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from catopt_dsl.backends.emit import emit_target
from catopt_dsl.backends.naming import Namer
from catopt_dsl.backends.python import package_name
from catopt_dsl.compile import load_plan

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "cases" / "naming"


@pytest.mark.parametrize("target", ["python", "rust", "cpp"])
@pytest.mark.parametrize("name", ["_3d", "_4p", "_0", "__9x"])
def test_no_identifier_starts_with_a_digit(target: str, name: str) -> None:
    n = Namer(target)  # type: ignore[arg-type]
    for kind in ("type", "field", "fn", "const", "module"):
        ident = n.name(kind, name)
        assert not ident[0].isdigit(), (kind, ident)
        assert ident.replace("r#", "").replace("_", "a").isalnum()


@pytest.mark.parametrize(("spec", "status"), [("edges.cat", "optimal"), ("infeasible_coupling.cat", "infeasible")])
def test_python_package_imports_and_solves(tmp_path: Path, spec: str, status: str) -> None:
    plan = load_plan(CASES / spec)
    emit_target("python", plan, tmp_path)
    probe = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]); m = importlib.import_module(sys.argv[2]);"
        " p = m.Plan(); print(p.solve().status)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path), package_name(plan)],
        check=False, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == status


def test_family_at_int64_ends_and_u32_schema_version_lower() -> None:
    plan = load_plan(CASES / "edges.cat")
    indices = sorted(o.index for o in plan.objects if o.index is not None)
    assert indices[0] == -(2**63) and indices[-1] == 2**63 - 1
    assert max(s.version for s in plan.schemas) == 2**32 - 1
