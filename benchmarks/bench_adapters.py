"""Adapters: a torch tenant's prox step vs the same loss written in `.cat`, and the adapter layer's cost.

One tenant, one consensus link, two losses over the same data (``m`` samples, ``n`` features). The
torch tenant is a spec with an external loss (``minimize "tenant_loss:logistic"(data = ...)``) whose
x-update the solver's worker (method ``adapter``) hands to the adapter's prox step:

* **least squares** ``0.5 ||A w - b||^2``: in `.cat` this takes the solver's fast path (the x-update
  is one matrix-vector product with a cached KKT factor), in torch the adapter's L-BFGS step;
* **logistic** ``sum log(1 + exp(-y .* (X w)))``: in `.cat` the local Newton method, in torch the
  same L-BFGS step.

Each x-update is timed along an ADMM-like sequence of centres ``v_k = x* + 0.7^k xi`` (warm-started
from the previous answer, as in a solve), and the per-step median is reported. The adapter's
overhead is measured twice: the solver worker against the adapter's prox called directly (what the
solver layer adds), and the adapter against the same torch L-BFGS loop written by hand on the same tensors (no
flattening, no numpy round trips, no gradient-judged polish): the table gives both times and the
accuracy each reaches (distance to the exact prox point), since the polish is what buys the
adapter its 1e-9 answers. Discovery (entry points + contracts + availability) and problem set-up
are timed too.

    python benchmarks/bench_adapters.py [--quick]

``run(quick=False) -> dict`` with ``tables``, ``targets`` and ``notes`` (the harness's own shape).
Times are never asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SPEC = """catopt 1;
SharedVariables model {{ var w: float[{n}]; }}
LocalProblem site {{
    param A: float[{m}, {n}] = load("A.npy");
    param b: float[{m}] = load("b.npy");
    var w: float[{n}];
    minimize {objective};
}}
Limit agree on model {{ site.w == model.w; }}
Colimit plan of model;
"""

OBJECTIVES = {
    "least squares": "0.5 * sum_squares(A @ w - b)",
    "logistic": "sum(logistic(-multiply(b, A @ w)))",
}


def _data(m: int, n: int, kind: str, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    w = rng.standard_normal(n)
    if kind == "logistic":
        return A, np.where(A @ w + 0.5 * rng.standard_normal(m) > 0, 1.0, -1.0)
    return A, A @ w + 0.1 * rng.standard_normal(m)


def _torch_loss(kind: str) -> Callable[..., Any]:
    import torch

    if kind == "logistic":
        return lambda p, d: torch.nn.functional.softplus(-d["b"] * (d["A"] @ p["w"])).sum()
    return lambda p, d: 0.5 * ((d["A"] @ p["w"] - d["b"]) ** 2).sum()


def _cat_worker(A: np.ndarray, b: np.ndarray, kind: str, folder: Path) -> Any:
    from catopt_dsl.compile import load_plan
    from catopt_dsl.solver import SolveOptions
    from catopt_dsl.solver.admm import build_workers
    from catopt_dsl.solver.layout import build_layout

    np.save(folder / "A.npy", A)
    np.save(folder / "b.npy", b)
    spec = folder / "site.cat"
    spec.write_text(SPEC.format(m=A.shape[0], n=A.shape[1], objective=OBJECTIVES[kind]), encoding="utf-8")
    plan = load_plan(spec)
    (worker,) = build_workers(build_layout(plan), SolveOptions())
    return worker


EXTERNAL_SPEC = """catopt 1;
SharedVariables model {{ var w: float[{n}]; }}
LocalProblem site via torch >= 1.0 {{
    var w: float[{n}];
    minimize "tenant_loss:{kind}"(data = "data.npz");
}}
Limit agree on model {{ site.w == model.w; }}
Colimit plan of model;
"""

TENANT_MODULE = """import torch
from catopt_dsl.adapters import external_loss


@external_loss(convex=True)
def least_squares(p, d):
    return 0.5 * ((d["A"] @ p["w"] - d["b"]) ** 2).sum()


@external_loss(convex=True)
def logistic(p, d):
    return torch.nn.functional.softplus(-d["b"] * (d["A"] @ p["w"])).sum()
"""


def _external_worker(A: np.ndarray, b: np.ndarray, kind: str, folder: Path) -> Any:
    """The torch tenant as the solver runs it: a spec with an external loss, its LocalWorker (method
    ``adapter``), whose x-update goes through ``solver/local/external.py`` to the adapter's prox."""
    from catopt_dsl.compile import load_plan
    from catopt_dsl.solver import SolveOptions
    from catopt_dsl.solver.admm import build_workers
    from catopt_dsl.solver.layout import build_layout

    np.savez(folder / "data.npz", A=A, b=b)
    (folder / "tenant_loss.py").write_text(TENANT_MODULE, encoding="utf-8")
    spec = folder / "external.cat"
    spec.write_text(EXTERNAL_SPEC.format(n=A.shape[1], kind=kind.replace(" ", "_")), encoding="utf-8")
    (worker,) = build_workers(build_layout(load_plan(spec)), SolveOptions())
    assert worker.method == "adapter", worker.method_reason
    return worker


def _centres(x_star: np.ndarray, steps: int, seed: int = 3) -> list[np.ndarray]:
    xi = np.random.default_rng(seed).standard_normal(x_star.size)
    return [x_star + 0.7**k * xi for k in range(steps)]


def _median_step(step: Callable[[np.ndarray], np.ndarray], centres: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    times, outs = [], []
    for v in centres:
        t0 = time.perf_counter()
        outs.append(step(v))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), outs


def _bare_lbfgs(loss: Callable[..., Any], data: dict[str, Any], n: int, rho: float) -> Callable[[np.ndarray], np.ndarray]:
    """The same optimiser written directly in torch, as a tenant would without catoptc."""
    import torch

    state = {"x": torch.zeros(n, dtype=torch.float64)}

    def step(v: np.ndarray) -> np.ndarray:
        x = state["x"].clone().requires_grad_(True)
        vt = torch.from_numpy(v)
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1000, tolerance_grad=1e-9, tolerance_change=1e-20,
                                history_size=50, line_search_fn="strong_wolfe")

        def closure() -> Any:
            opt.zero_grad()
            f = loss({"w": x}, data) + 0.5 * rho * ((x - vt) ** 2).sum()
            f.backward()
            return f

        opt.step(closure)
        state["x"] = x.detach()
        return x.detach().numpy().copy()

    return step


def _exact_prox(A: np.ndarray, b: np.ndarray, kind: str, v: np.ndarray, rho: float) -> np.ndarray:
    from catopt_dsl.adapters.samples import reference_prox

    if kind == "least squares":
        return np.linalg.solve(A.T @ A + rho * np.eye(A.shape[1]), A.T @ b + rho * v)

    def loss(t: np.ndarray) -> float:
        return float(np.sum(np.logaddexp(0.0, -b * (A @ t))))

    def grad(t: np.ndarray) -> np.ndarray:
        return -A.T @ (b / (1.0 + np.exp(b * (A @ t))))

    def hess(t: np.ndarray) -> np.ndarray:
        s = 1.0 / (1.0 + np.exp(b * (A @ t)))
        return A.T @ (A * (s * (1 - s))[:, None])

    return reference_prox(loss, grad, hess, v, rho)


def run(quick: bool = False) -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        return {"skipped": "torch is not installed (pip install 'catopt-dsl[ml]')"}
    import torch

    from catopt_dsl.adapters import registry
    from catopt_dsl.adapters.api import ParamLayout

    m, n, rho = (200, 20, 1.0) if quick else (400, 40, 1.0)
    steps = 8 if quick else 25
    t0 = time.perf_counter()
    found = registry.discover()
    discover_s = time.perf_counter() - t0
    adapter = registry.get("torch")
    rows, overhead_rows, raw_rows = [], [], []
    for kind in OBJECTIVES:
        A, b = _data(m, n, kind)
        data = {"A": A, "b": b}
        t0 = time.perf_counter()
        problem = adapter.problem(_torch_loss(kind), data, ParamLayout.of(("w", (n,))))  # type: ignore[attr-defined]
        setup_s = time.perf_counter() - t0
        x_star = problem.prox(np.zeros(n), rho).theta
        centres = _centres(x_star, steps)
        adapter_s, adapter_out = _median_step(lambda v, p=problem: p.prox(v, rho).theta, centres)
        with tempfile.TemporaryDirectory() as tmp:
            worker = _cat_worker(A, b, kind, Path(tmp))
            worker.step(np.zeros(n), rho)  # first call builds the KKT factor / the CVXPY problem
            cat_s, cat_out = _median_step(lambda v, w=worker: w.step(v, rho).copy(), centres)
            path = f"{worker.method}" if worker.fast else "CVXPY (Clarabel)"
            ext_worker = _external_worker(A, b, kind, Path(tmp))
            ext_worker.step(np.zeros(n), rho)
            worker_s, worker_out = _median_step(lambda v, w=ext_worker: w.step(v, rho).copy(), centres)
        tensors = {"A": torch.from_numpy(A), "b": torch.from_numpy(b)}
        bare = _bare_lbfgs(_torch_loss(kind), tensors, n, rho)
        bare(np.zeros(n))
        bare_s, bare_out = _median_step(bare, centres)
        exact = [_exact_prox(A, b, kind, v, rho) for v in centres]

        def err(outs: list[np.ndarray], exact: list[np.ndarray] = exact) -> float:
            return max(float(np.abs(o - e).max()) for o, e in zip(outs, exact))

        rows.append([kind, f"{m} x {n}", f"{worker_s * 1e3:.2f}", f"{cat_s * 1e3:.3f} ({path})",
                     f"{worker_s / cat_s:.1f}x", f"{err(worker_out):.0e}", f"{err(cat_out):.0e}"])
        overhead_rows.append([kind, f"{bare_s * 1e3:.2f}", f"{adapter_s * 1e3:.2f}", f"{worker_s * 1e3:.2f}",
                              f"{adapter_s / bare_s:.2f}x", f"{worker_s / adapter_s:.2f}x",
                              f"{err(bare_out):.0e}", f"{err(adapter_out):.0e}", f"{setup_s * 1e3:.1f}"])
        raw_rows.append({"loss": kind, "m": m, "n": n, "adapter_step_s": adapter_s, "cat_step_s": cat_s, "cat_path": path,
                         "bare_torch_step_s": bare_s, "worker_step_s": worker_s, "worker_error": err(worker_out), "adapter_error": err(adapter_out), "cat_error": err(cat_out),
                         "bare_error": err(bare_out), "setup_s": setup_s})
    logistic = next(r for r in raw_rows if r["loss"] == "logistic")
    return {
        "rows": raw_rows,
        "discover_s": discover_s,
        "tables": [
            {"title": f"One x-update (median over {steps} warm-started steps, rho = {rho:g}), milliseconds",
             "columns": ["loss", "data", "torch tenant ms (spec, solver worker)", ".cat LocalWorker ms (method)",
                         "torch / .cat", "torch error", ".cat error"],
             "rows": rows},
            {"title": "Adapter layer vs the same torch L-BFGS loop written by hand",
             "columns": ["loss", "bare torch ms", "adapter prox ms", "solver worker ms", "adapter / bare",
                         "worker / adapter", "bare error", "adapter error", "problem set-up ms"],
             "rows": overhead_rows},
            {"title": "Discovery", "columns": ["what", "value"],
             "rows": [["adapters found through entry points", str(len(found))],
                      ["discover() (load + contract + availability)", f"{discover_s * 1e3:.0f} ms"]]},
        ],
        "targets": [
            {"name": "torch tenant's x-update vs the same loss in .cat (local Newton, logistic)",
             "required": "reported (no target: different solvers)",
             "measured": f"{logistic['worker_step_s'] / logistic['cat_step_s']:.2f}x",
             "met": None, "reason": "informational"},
            {"name": "solver worker's x-update vs the adapter's prox step called directly (logistic)",
             "required": "reported: the worker adds M'd/c and bookkeeping only",
             "measured": f"{logistic['worker_step_s'] / logistic['adapter_step_s']:.2f}x",
             "met": None, "reason": "informational"},
        ],
        "notes": [
            "error: largest distance (inf-norm) of a step's answer to the exact prox point (closed form for least "
            "squares, Newton to 1e-12 for logistic), over the sequence",
            "the .cat least-squares step is the fast path's cached affine map: no adapter can match a matvec; "
            "the logistic step is where an external framework competes with the language's own local Newton method",
            "adapter / bare includes the gradient-judged Newton-CG polish that takes L-BFGS from its ~1e-7 "
            "float64 floor to the stopping rule, and numpy <-> torch conversions at the seam",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick), indent=2, default=str))


if __name__ == "__main__":
    main()
