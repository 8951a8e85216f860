"""An external loss whose vars are not all linked the same number of times.

`site_a.w` is in consensus and `site_a.c` (an intercept) is the tenant's own, so M'M is not a
multiple of the identity and the adapter's prox step cannot be used as the x-update: the local
solver minimises the loss plus the ADMM penalty itself (trust-region Newton-CG on the adapter's
loss, gradient and Hessian-vector products). The answer must be the one the same plan reaches when
the loss is written in `.cat` (centralised solve).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from catopt_dsl.compile import load_plan
from catopt_dsl.solver import SolveOptions, solve, solve_centralized

LOSS = '''
import torch

from catopt_dsl.adapters import external_loss


@external_loss(convex=True, params={"w": (3,), "c": ()})
def intercept_ls(params, data):
    r = data["X"] @ params["w"] + params["c"] - data["y"]
    return (r * r).sum()
'''

HEAD = """catopt 1;
SharedVariables model { var w: float[3]; }
LocalProblem site_b {
    param X: float[15, 3] = load("Xb.npy");
    param y: float[15] = load("yb.npy");
    var w: float[3];
    minimize sum_squares(X @ w - y);
}
"""

EXTERNAL = """LocalProblem site_a via torch {
    var w: float[3];
    var c: float;
    minimize "ls_loss:intercept_ls"(data = "a.npz");
}
"""

WRITTEN = """LocalProblem site_a {
    param X: float[20, 3] = load("Xa.npy");
    param y: float[20] = load("ya.npy");
    var w: float[3];
    var c: float;
    minimize sum_squares(X @ w + c - y);
}
"""

TAIL = """Limit agree on model { site_a.w == model.w; site_b.w == model.w; }
Colimit plan of model;
"""


def _folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    Xa, Xb = rng.normal(size=(20, 3)), rng.normal(size=(15, 3))
    w_true = np.array([1.0, -2.0, 0.5])
    ya = Xa @ w_true + 3.0 + 0.1 * rng.normal(size=20)
    yb = Xb @ w_true + 0.1 * rng.normal(size=15)
    np.savez(tmp_path / "a.npz", X=Xa, y=ya)
    for name, arr in (("Xa", Xa), ("ya", ya), ("Xb", Xb), ("yb", yb)):
        np.save(tmp_path / f"{name}.npy", arr)
    (tmp_path / "ls_loss.py").write_text(LOSS, encoding="utf-8")
    (tmp_path / "external.cat").write_text(HEAD + EXTERNAL + TAIL, encoding="utf-8")
    (tmp_path / "written.cat").write_text(HEAD + WRITTEN + TAIL, encoding="utf-8")
    return tmp_path


@pytest.mark.slow
def test_a_partly_linked_external_loss_reaches_the_written_out_optimum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catopt_dsl.solver.local.external import ExternalProx

    newton_steps = []
    original = ExternalProx._newton

    def counted(self, d, rho, warm):  # type: ignore[no-untyped-def]
        newton_steps.append(rho)
        return original(self, d, rho, warm)

    monkeypatch.setattr(ExternalProx, "_newton", counted)
    folder = _folder(tmp_path)
    external = load_plan(folder / "external.cat")
    reference = solve_centralized(load_plan(folder / "written.cat"))
    assert reference.status == "optimal"
    got = solve(external, SolveOptions(eps_abs=1e-8, eps_rel=1e-8))
    assert got.status == "optimal", got.message
    assert got.objective == pytest.approx(reference.objective, rel=1e-6)
    np.testing.assert_allclose(got.shared["model"]["w"], reference.shared["model"]["w"], atol=1e-5)
    np.testing.assert_allclose(got.objects["site_a"]["c"], reference.objects["site_a"]["c"], atol=1e-5)
    assert got.local_solvers is not None
    assert got.local_solvers["methods"].get("adapter", 0) == 1
    assert len(newton_steps) == got.iterations  # every x-update of site_a took the Newton-CG path
