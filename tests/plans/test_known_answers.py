"""Plans with known answers: every backend gives each plan the status of the centralised solve.

Each ``cases/*.cat`` states the class it was written for on its first line (``// expect: X``); the
reference is CVXPY's centralised solve of the glued plan, computed here, and the test first checks
that it agrees with the stated class (so the folder keeps covering every class). Then:

* a plan with an optimum solves to 1e-5 relative objective, in-process and on Ray, status
  ``optimal`` on both;
* an infeasible or unbounded plan gets exactly that status within 500 iterations, in-process and
  on Ray, with no objective (never a point reported as a solution).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver import SolveOptions, SolveResult, solve, solve_centralized

CASES = sorted((Path(__file__).parent / "cases").glob("*.cat"))
IDS = [p.stem for p in CASES]
DETECT_WITHIN = 500


def expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("// expect: "), f"{path.name}: first line must say `// expect: <status>`"
    return first.split()[2]


@lru_cache(maxsize=None)
def plan_of(path: Path) -> IRPlan:
    return load_plan(path)


@lru_cache(maxsize=None)
def reference(path: Path) -> SolveResult:
    return solve_centralized(plan_of(path))


def options(path: Path) -> SolveOptions:
    return SolveOptions() if expected(path) == "optimal" else SolveOptions(max_iter=DETECT_WITHIN)


def check_against_reference(path: Path, got: SolveResult) -> None:
    ref = reference(path)
    assert got.status == ref.status, f"{path.stem}: {got.status} ({got.message}) vs centralised {ref.status}"
    if ref.status == "optimal":
        assert got.objective is not None and ref.objective is not None
        assert abs(got.objective - ref.objective) <= 1e-5 * max(1.0, abs(ref.objective)), (got.objective, ref.objective)
    else:
        assert got.objective is None
        assert got.iterations is not None and got.iterations <= DETECT_WITHIN
        assert got.message


def test_the_folder_covers_every_class() -> None:
    kinds = Counter(expected(p) for p in CASES)
    assert len(CASES) >= 25
    assert kinds["optimal"] >= 10 and kinds["infeasible"] >= 5 and kinds["unbounded"] >= 4, kinds


@pytest.mark.parametrize("path", CASES, ids=IDS)
def test_reference_has_the_stated_class(path: Path) -> None:
    assert reference(path).status == expected(path)


@pytest.mark.parametrize("path", CASES, ids=IDS)
def test_in_process(path: Path) -> None:
    check_against_reference(path, solve(plan_of(path), options(path)))


def test_each_constraint_of_a_limit_is_its_own_coupling() -> None:
    plan = plan_of(Path(__file__).parent / "cases" / "two_couplings_one_limit.cat")
    assert [c.name for c in plan.couplings] == ["lim#0", "lim#1"]
    assert {c.limit for c in plan.couplings} == {"lim"}
    family = plan_of(Path(__file__).parent / "cases" / "limit_family_two_constraints.cat")
    assert [c.name for c in family.couplings] == ["band[0]#0", "band[0]#1", "band[1]#0", "band[1]#1"]


@pytest.fixture(scope="module")
def ray_up() -> Iterator[Any]:
    pytest.importorskip("ray")
    from catopt_dsl.runtime.ray_backend import ray_session

    with ray_session(num_cpus=2) as ray:
        yield ray


@pytest.mark.slow
@pytest.mark.parametrize("path", CASES, ids=IDS)
def test_on_ray(ray_up: Any, path: Path) -> None:
    from catopt_dsl.runtime.ray_backend import solve_on_ray

    got = solve_on_ray(plan_of(path), options(path))
    check_against_reference(path, got)
    local = solve(plan_of(path), options(path))
    assert (got.status, got.iterations) == (local.status, local.iterations)


@pytest.mark.parametrize("path", [p for p in CASES if expected(p) == "optimal"], ids=lambda p: p.stem)
def test_coupling_prices_match_the_centralised_duals(path: Path) -> None:
    import numpy as np

    got, ref = solve(plan_of(path)), reference(path)
    assert set(got.prices.get("couplings", {})) == set(ref.prices.get("couplings", {}))
    for name, lam in got.prices.get("couplings", {}).items():
        np.testing.assert_allclose(lam, ref.prices["couplings"][name], rtol=1e-4, atol=1e-4, err_msg=name)
