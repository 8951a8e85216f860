"""Iterations to convergence vs the initial rho on a 16-tenant consensus lasso.

Each tenant i holds ``A_i`` (50 x 20) and ``b_i`` (seed-deterministic) and minimises
``sum_squares(A_i w - b_i)``; the shared block carries ``g(w) = 0.1 * norm1(w)``. The solve uses
eps_rel = 1e-4, eps_abs = 1e-6 and adaptive rho; the point of the table is that the iteration
count barely depends on the initial rho (each must stay under 150).

    python benchmarks/bench_rho.py [--quick]

``run(quick=False) -> dict``: ``{"rows": [{"rho0", "iterations", "status", "objective",
"final_rho", "time_s"}, ...], "centralized_objective": float}``. ``quick`` uses 4 tenants.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from catopt_dsl.ir.model import (
    IRBinary,
    IRCall,
    IRConsensus,
    IRConst,
    IRObject,
    IRParam,
    IRParamRef,
    IRPlan,
    IRShared,
    IRVar,
    IRVarRef,
    frozen_array,
)
from catopt_dsl.solver import SolveOptions, solve, solve_centralized

RHOS = (0.01, 1.0, 100.0)


def lasso_plan(tenants: int = 16, m: int = 50, n: int = 20, lam: float = 0.1, seed: int = 2024) -> IRPlan:
    """The benchmark plan (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=n) * (rng.random(n) < 0.4)
    objects = []
    consensus = []
    w = IRVarRef("w", (n,))
    for i in range(tenants):
        A = rng.normal(size=(m, n))
        b = A @ w_true + 0.5 * rng.normal(size=m)
        resid = IRBinary("-", IRBinary("@", IRParamRef("A", (m, n)), w, (m,)), IRParamRef("b", (m,)), (m,))
        objects.append(
            IRObject(
                name=f"tenant_{i:02d}",
                family=None,
                index=None,
                platform=None,
                adapter=None,
                functors=(),
                params=(
                    IRParam("A", "float", (m, n), frozen_array(A)),
                    IRParam("b", "float", (m,), frozen_array(b)),
                ),
                vars=(IRVar("w", (n,), 0),),
                sense="minimize",
                objective=IRCall("sum_squares", (resid,), ()),
                constraints=(),
            )
        )
        consensus.append(IRConsensus("fit", f"tenant_{i:02d}", "w", "model", "w", (n,)))
    g = IRBinary("*", IRConst(frozen_array(lam), ()), IRCall("norm1", (w,), ()), ())
    block = IRShared(name="model", params=(), vars=(IRVar("w", (n,), 0),), objective=g, constraints=())
    return IRPlan(
        name="bench_lasso",
        source="bench_lasso.cat",
        spec_hash="0" * 64,
        schemas=(),
        shared=(block,),
        objects=tuple(objects),
        morphisms=(),
        consensus=tuple(consensus),
        couplings=(),
        functors=(),
        colimit=None,
    )


def run(quick: bool = False) -> dict[str, Any]:
    """Solve the lasso from each initial rho; return the table (see the module docstring)."""
    plan = lasso_plan(tenants=4 if quick else 16)
    rows = []
    for rho0 in RHOS:
        opts = SolveOptions(rho=rho0, eps_rel=1e-4, eps_abs=1e-6, max_iter=1000)
        start = time.perf_counter()
        result = solve(plan, opts)
        rows.append(
            {
                "rho0": rho0,
                "iterations": result.iterations,
                "status": result.status,
                "objective": result.objective,
                "final_rho": result.history[-1]["rho"] if result.history else rho0,
                "time_s": time.perf_counter() - start,
            }
        )
    return {"rows": rows, "centralized_objective": solve_centralized(plan).objective}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    table = run(quick=args.quick)
    print(f"{'rho0':>8}  {'iters':>6}  {'status':>10}  {'objective':>14}  {'final rho':>10}  {'time s':>7}")
    for row in table["rows"]:
        print(
            f"{row['rho0']:>8g}  {row['iterations']:>6}  {row['status']:>10}  {row['objective']:>14.8g}  "
            f"{row['final_rho']:>10.3g}  {row['time_s']:>7.3f}"
        )
    print(json.dumps({"centralized_objective": table["centralized_objective"]}))


if __name__ == "__main__":
    main()
