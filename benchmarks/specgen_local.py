"""Generated plans for the local-solver benchmark: six plan classes, each at any number of members.

Every plan goes through the real front end (``catopt_dsl.compile.load_plan``), with per-member
data in ``.npy`` files sliced by the family index, seeded (same arguments, same plan):

* ``logreg``: consensus logistic regression, 80 x 8 data per site, a ridge on the shared w;
* ``huber``: consensus huber regression (the same shapes, outliers in the labels), a ridge on w;
* ``fleet_quad``: fleet sharing, a quadratic utility with box constraints (``specgen_solver``);
* ``fleet_log``: fleet sharing, log utilities ``value * log(1 + x)`` with box constraints;
* ``mixed``: consensus on a least-squares w and sharing of h, with ``abs(w) <= h`` and a budget;
* ``dispatch``: economic dispatch over 24 hours, quadratic costs, ``pmin <= p <= pmax`` and ramp
  limits ``abs(p[1:] - p[:-1]) <= ramp``, supply equal to demand every hour.

``PLANS`` maps each class to its writer ``(folder, members) -> Path`` of the spec.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.specgen_solver import fleet_spec
from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan

__all__ = ["PLANS", "plan_of"]

HOURS = 24


def _save(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float64), allow_pickle=False)
    path.write_bytes(buf.getvalue())


def _folder(folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def logreg_spec(folder: Path, sites: int, rows: int = 80, features: int = 8, seed: int = 3) -> Path:
    folder = _folder(folder)
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=features)
    X = rng.normal(size=(sites, rows, features))
    y = np.where(X @ w_true + 0.5 * rng.normal(size=(sites, rows)) > 0, 1.0, -1.0)
    _save(folder / "X.npy", X)
    _save(folder / "y.npy", y)
    path = folder / f"logreg_{sites}.cat"
    path.write_text(
        "catopt 1;\n"
        f"SharedVariables model {{ var w: float[{features}]; minimize 0.1 * sum_squares(w); }}\n"
        f"LocalProblem site[i in 0..{sites - 1}] {{\n"
        f'    param X: float[{rows}, {features}] = load("X.npy")[i];\n'
        f'    param y: float[{rows}] = load("y.npy")[i];\n'
        f"    var w: float[{features}];\n"
        "    minimize sum(logistic(-multiply(y, X @ w)));\n"
        "}\n"
        "Limit agree on model { site[*].w == model.w; }\n"
        "Colimit plan of model;\n",
        encoding="utf-8",
    )
    return path


def huber_spec(folder: Path, sites: int, rows: int = 80, features: int = 8, seed: int = 5) -> Path:
    folder = _folder(folder)
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=features)
    X = rng.normal(size=(sites, rows, features))
    noise = 0.3 * rng.normal(size=(sites, rows))
    outliers = (rng.random((sites, rows)) < 0.1) * rng.normal(scale=10.0, size=(sites, rows))
    _save(folder / "X.npy", X)
    _save(folder / "y.npy", X @ w_true + noise + outliers)
    path = folder / f"huber_{sites}.cat"
    path.write_text(
        "catopt 1;\n"
        f"SharedVariables model {{ var w: float[{features}]; minimize 0.1 * sum_squares(w); }}\n"
        f"LocalProblem site[i in 0..{sites - 1}] {{\n"
        f'    param X: float[{rows}, {features}] = load("X.npy")[i];\n'
        f'    param y: float[{rows}] = load("y.npy")[i];\n'
        f"    var w: float[{features}];\n"
        "    minimize sum(huber(X @ w - y, 1.0));\n"
        "}\n"
        "Limit agree on model { site[*].w == model.w; }\n"
        "Colimit plan of model;\n",
        encoding="utf-8",
    )
    return path


def fleet_log_spec(folder: Path, tenants: int, pools: int = 3, seed: int = 13) -> Path:
    folder = _folder(folder)
    rng = np.random.default_rng(seed)
    value = rng.uniform(1.0, 4.0, size=(tenants, pools))
    demand = rng.uniform(1.0, 10.0, size=(tenants, pools))
    capacity = 0.4 * demand.sum(axis=0)
    _save(folder / "value.npy", value)
    _save(folder / "demand.npy", demand)
    cap = ", ".join(repr(float(round(c, 6))) for c in capacity)
    path = folder / f"fleet_log_{tenants}.cat"
    path.write_text(
        "catopt 1;\n"
        f"schema Usage v1 {{ hours: float[{pools}]; }}\n"
        f"SharedVariables fleet {{ param capacity: float[{pools}] = [{cap}]; }}\n"
        f"LocalProblem tenant[i in 0..{tenants - 1}] {{\n"
        f'    param value: float[{pools}] = load("value.npy")[i];\n'
        f'    param demand: float[{pools}] = load("demand.npy")[i];\n'
        f"    var x: float[{pools}];\n"
        "    maximize sum(multiply(value, log(x + 1.0)));\n"
        "    subject to { x >= 0; x <= demand; }\n"
        "}\n"
        f"Morphism alloc[i in 0..{tenants - 1}] : tenant[i] -> fleet carries Usage v1 {{ hours = x; }}\n"
        "Limit capacity_limit on fleet { sum(*.hours) <= capacity; }\n"
        "Colimit plan of fleet;\n",
        encoding="utf-8",
    )
    return path


def mixed_spec(folder: Path, sites: int, rows: int = 20, features: int = 4, seed: int = 17) -> Path:
    folder = _folder(folder)
    rng = np.random.default_rng(seed)
    w_true = np.array([1.5, -1.0, 0.5, 2.0])[:features]
    A = rng.normal(size=(sites, rows, features))
    b = A @ w_true + 0.2 * rng.normal(size=(sites, rows))
    cost = rng.uniform(0.05, 0.2, size=(sites, features))
    _save(folder / "A.npy", A)
    _save(folder / "b.npy", b)
    _save(folder / "cost.npy", cost)
    budget = 0.5 * sites * np.abs(w_true)  # binding: half of what the unconstrained fit wants
    bud = ", ".join(repr(float(v)) for v in budget)
    path = folder / f"mixed_{sites}.cat"
    path.write_text(
        "catopt 1;\n"
        f"schema Hours v1 {{ h: float[{features}]; }}\n"
        f"SharedVariables model {{ var w: float[{features}]; }}\n"
        f"SharedVariables pool {{ param budget: float[{features}] = [{bud}]; }}\n"
        f"LocalProblem site[i in 0..{sites - 1}] {{\n"
        f'    param A: float[{rows}, {features}] = load("A.npy")[i];\n'
        f'    param b: float[{rows}] = load("b.npy")[i];\n'
        f'    param cost: float[{features}] = load("cost.npy")[i];\n'
        f"    var w: float[{features}];\n"
        f"    var h: float[{features}];\n"
        "    minimize sum_squares(A @ w - b) + dot(cost, h);\n"
        "    subject to { abs(w) <= h; }\n"
        "}\n"
        f"Morphism use[i in 0..{sites - 1}] : site[i] -> pool carries Hours v1 {{ h = h; }}\n"
        "Limit agree on model { site[*].w == model.w; }\n"
        "Limit budget_limit on pool { sum(*.h) <= budget; }\n"
        "Colimit plan of model, pool;\n",
        encoding="utf-8",
    )
    return path


def dispatch_spec(folder: Path, generators: int, seed: int = 19) -> Path:
    folder = _folder(folder)
    rng = np.random.default_rng(seed)
    pmax = rng.uniform(5.0, 15.0, size=generators)
    a = rng.uniform(0.01, 0.1, size=(generators, HOURS))
    b = rng.uniform(1.0, 3.0, size=(generators, HOURS))
    _save(folder / "pmax.npy", pmax)
    _save(folder / "a.npy", a)
    _save(folder / "b.npy", b)
    t = np.arange(HOURS)
    demand = pmax.sum() * (0.5 + 0.2 * np.sin(2.0 * np.pi * t / HOURS))
    dem = ", ".join(repr(float(round(v, 6))) for v in demand)
    path = folder / f"dispatch_{generators}.cat"
    path.write_text(
        "catopt 1;\n"
        f"schema Power v1 {{ p: float[{HOURS}]; }}\n"
        f"SharedVariables grid {{ param demand: float[{HOURS}] = [{dem}]; }}\n"
        f"LocalProblem gen[i in 0..{generators - 1}] {{\n"
        f'    param pmax: float = load("pmax.npy")[i];\n'
        f'    param a: float[{HOURS}] = load("a.npy")[i];\n'
        f'    param b: float[{HOURS}] = load("b.npy")[i];\n'
        f"    var p: float[{HOURS}];\n"
        "    minimize sum(multiply(a, square(p))) + dot(b, p);\n"
        "    subject to { p >= 0.1 * pmax; p <= pmax; abs(p[1:] - p[:-1]) <= 0.15 * pmax; }\n"
        "}\n"
        f"Morphism out[i in 0..{generators - 1}] : gen[i] -> grid carries Power v1 {{ p = p; }}\n"
        "Limit balance on grid { sum(*.p) == demand; }\n"
        "Colimit plan of grid;\n",
        encoding="utf-8",
    )
    return path


PLANS: dict[str, Callable[[Path, int], Path]] = {
    "logreg": logreg_spec,
    "huber": huber_spec,
    "fleet_quad": fleet_spec,
    "fleet_log": fleet_log_spec,
    "mixed": mixed_spec,
    "dispatch": dispatch_spec,
}


def plan_of(kind: str, folder: Path, members: int) -> IRPlan:
    """Write and compile the plan of class ``kind`` with ``members`` members."""
    return load_plan(PLANS[kind](folder, members))
