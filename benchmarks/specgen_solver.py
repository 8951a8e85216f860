"""Generated plans for the solver benchmarks: consensus lasso and the GPU-fleet sharing problem.

Both go through the real front end (``catopt_dsl.compile.load_plan``) so the solver sees exactly
the IR a user's spec would produce. Per-member data lives in ``.npy`` files next to the spec and
is sliced by the family index (``load("...")[i]``), which keeps the spec text small and the
compile fast even at 1,000 members. Everything is seeded: same arguments, same plan.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan

__all__ = ["lasso_spec", "fleet_spec", "lasso_plan", "fleet_plan"]

POOLS = 3  # GPU pools (a100, h100, mi300), as in examples/gpu_fleet.cat


def _save_npy(path: Path, array: np.ndarray) -> None:
    # np.save through a buffer, so the bytes written are exactly np.save's (deterministic).
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float64), allow_pickle=False)
    path.write_bytes(buf.getvalue())


def lasso_spec(folder: Path, sites: int, rows: int = 50, features: int = 20, lam: float = 0.1, seed: int = 7) -> Path:
    """Write a consensus-lasso spec (``sites`` members, each ``rows x features``) and its data.

    ``minimize sum_i 0.5 ||A_i w_i - b_i||^2 + lam ||w||_1  s.t.  w_i == w``: quadratic locals
    without constraints, so the solver's closed-form fast path applies to every site.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=features) * (rng.random(features) < 0.4)
    A = rng.normal(size=(sites, rows, features))
    b = A @ w_true + 0.5 * rng.normal(size=(sites, rows))
    _save_npy(folder / "lasso_A.npy", A)
    _save_npy(folder / "lasso_b.npy", b)
    text = (
        "catopt 1;\n"
        f"SharedVariables model {{ var w: float[{features}]; minimize {lam} * norm1(w); }}\n"
        f"LocalProblem site[i in 0..{sites - 1}] {{\n"
        f'    param A: float[{rows}, {features}] = load("lasso_A.npy")[i];\n'
        f'    param b: float[{rows}] = load("lasso_b.npy")[i];\n'
        f"    var w: float[{features}];\n"
        "    minimize 0.5 * sum_squares(A @ w - b);\n"
        "}\n"
        "Limit agree on model { site[*].w == model.w; }\n"
        "Colimit plan of model;\n"
    )
    path = folder / f"lasso_{sites}.cat"
    path.write_text(text, encoding="utf-8")
    return path


def fleet_spec(folder: Path, tenants: int, seed: int = 11) -> Path:
    """Write the GPU-fleet sharing spec with ``tenants`` members and its data.

    Each tenant maximises ``value'x - sum_squares(multiply(cost, x))`` (value of its GPU hours minus a
    quadratic congestion penalty) with ``0 <= x <= demand``; together the hours must fit the
    fleet's capacity, which is set to 40 % of the total demand per pool so the sharing limit binds.
    The box constraints keep the solver off its closed-form fast path (CVXPY local solves).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    value = rng.uniform(1.0, 4.0, size=(tenants, POOLS))
    demand = rng.uniform(1.0, 10.0, size=(tenants, POOLS))
    cost = np.sqrt(rng.uniform(0.02, 0.2, size=(tenants, POOLS)))
    capacity = 0.4 * demand.sum(axis=0)
    _save_npy(folder / "fleet_value.npy", value)
    _save_npy(folder / "fleet_demand.npy", demand)
    _save_npy(folder / "fleet_cost.npy", cost)
    cap = ", ".join(repr(float(round(c, 6))) for c in capacity)
    text = (
        "catopt 1;\n"
        f"schema Usage v1 {{ hours: float[{POOLS}]; }}\n"
        f"SharedVariables fleet {{ param capacity: float[{POOLS}] = [{cap}]; }}\n"
        f"LocalProblem tenant[i in 0..{tenants - 1}] on cuda {{\n"
        f'    param value: float[{POOLS}] = load("fleet_value.npy")[i];\n'
        f'    param demand: float[{POOLS}] = load("fleet_demand.npy")[i];\n'
        f'    param cost: float[{POOLS}] = load("fleet_cost.npy")[i];\n'
        f"    var x: float[{POOLS}];\n"
        "    maximize dot(value, x) - sum_squares(multiply(cost, x));\n"
        "    subject to { x >= 0; x <= demand; }\n"
        "}\n"
        f"Morphism alloc[i in 0..{tenants - 1}] : tenant[i] -> fleet carries Usage v1 {{ hours = x; }}\n"
        "Limit capacity_limit on fleet { sum(*.hours) <= capacity; }\n"
        "Colimit plan of fleet;\n"
    )
    path = folder / f"fleet_{tenants}.cat"
    path.write_text(text, encoding="utf-8")
    return path


def lasso_plan(folder: Path, sites: int) -> IRPlan:
    """Write and compile the consensus-lasso spec (see :func:`lasso_spec`)."""
    return load_plan(lasso_spec(folder, sites))


def fleet_plan(folder: Path, tenants: int) -> IRPlan:
    """Write and compile the GPU-fleet spec (see :func:`fleet_spec`)."""
    return load_plan(fleet_spec(folder, tenants))
