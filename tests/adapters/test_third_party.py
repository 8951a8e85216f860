"""A third party's adapter, installed from its own package, is found, listed, verified and used
through the adapter API without any change to catoptc (tests/fixtures/catopt_adapter_numpyfn)."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from catopt_dsl.adapters import registry
from catopt_dsl.adapters.kit import assert_conforms
from catopt_dsl.adapters.samples import sample

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "catopt_adapter_numpyfn"


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-install the fixture package into a private folder (a copy: builds leave files behind)."""
    root = tmp_path_factory.mktemp("third_party")
    source = root / "src"
    shutil.copytree(FIXTURE, source)
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    assert (target / "catopt_adapter_numpyfn-0.3.1.dist-info" / "entry_points.txt").is_file()
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    for name in [m for m in sys.modules if m.startswith("catopt_adapter_numpyfn")]:
        del sys.modules[name]


def _catoptc(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-m", "catopt_dsl", "adapters", *args], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.slow
def test_found_listed_and_verified_by_catoptc(site_packages: Path) -> None:
    listed = _catoptc(site_packages, "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("numpyfn "))
    assert row.split()[:5] == ["numpyfn", "0.3.1", "framework", "1.0", "ok"]
    assert row.endswith("catopt-adapter-numpyfn 0.3.1")
    verified = _catoptc(site_packages, "verify", "numpyfn")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.splitlines()[-1] == "20 checks: conforms"
    # Its deliberately broken twin fails, exit 1, naming the check and the numbers.
    broken = _catoptc(site_packages, "verify", "brokenfn", "--quick")
    assert broken.returncode == 1
    assert re.search(r"FAIL  softmax: gradient +gradient disagrees with finite differences", broken.stdout)
    assert "does NOT conform" in broken.stdout.splitlines()[-1] and "Traceback" not in broken.stderr


def test_used_through_the_adapter_api_next_to_a_torch_tenant(site_packages: Path) -> None:
    numpyfn = registry.resolve("numpyfn >= 0.3, < 1", kind="framework")
    assert numpyfn.ok and numpyfn.adapter is not None
    assert_conforms(numpyfn.adapter, quick=True)
    torch = registry.resolve("torch >= 1.0", kind="framework").adapter
    assert torch is not None
    # Consensus least squares across two tenants, one per framework: min f_a(w) + f_b(w).
    s = sample("least_squares")
    A, b = s.data["A"], s.data["b"]
    tenants = [
        numpyfn.adapter.problem("catopt_adapter_numpyfn.samples:least_squares", {"A": A[:10], "b": b[:10]}, s.layout),
        torch.problem("catopt_dsl.adapters.torch_samples:least_squares", {"A": A[10:], "b": b[10:]}, s.layout),
    ]
    rho, z = 1.0, np.zeros(6)
    u = [np.zeros(6), np.zeros(6)]
    for _ in range(300):
        x = []
        for t, ui in zip(tenants, u):
            step = t.prox(z - ui, rho)
            assert step.converged, step.message
            x.append(step.theta)
        z = np.mean([xi + ui for xi, ui in zip(x, u)], axis=0)
        u = [ui + xi - z for xi, ui in zip(x, u)]
        if max(np.abs(xi - z).max() for xi in x) < 1e-10:
            break
    exact = np.linalg.lstsq(A, b, rcond=None)[0]
    assert np.abs(z - exact).max() < 1e-7
    assert all(np.abs(xi - z).max() < 1e-9 for xi in x)
