"""The generated native solvers against the real plan (issue acceptance 1 and 4): the Rust crate's
``solve`` binary and the C++ ``solve_<spec>`` program solve each plan natively -- every object
with its generated QP solver, constraints and all -- and print the ``catoptc solve --json``
contract. Their status equals ``catoptc solve --centralized``'s (and the in-process ADMM's), and
their objective matches the centralised one within 1e-5 relative; a local QP with no point ends
``infeasible`` naming the object, at once. A local solver that returns NaN or Inf ends the solve
``local_solver_failed`` naming the object."""

from __future__ import annotations

import math

import pytest
from nativetools import (
    REFERENCE_SPECS,
    NativeBuilds,
    RunResult,
    parse_nonfinite,
    parse_solve,
    plan_reference,
)

#: keys of the `catoptc solve --json` object
JSON_KEYS = {
    "dual_residual", "iterations", "local_solvers", "membership", "message", "objective", "objects", "prices",
    "primal_residual", "shared", "solve_time_s", "status", "warnings",
}


@pytest.fixture(scope="module")
def references(native_builds: NativeBuilds) -> dict[tuple[str, bool], RunResult]:
    return {(spec, c): plan_reference(native_builds.plan(spec), c) for spec in REFERENCE_SPECS for c in (True, False)}


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7)


# Every native build of these plans compiles the whole crate/project: slow.
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["rust", "cpp"])
@pytest.mark.parametrize("spec", REFERENCE_SPECS)
def test_native_solve_matches_the_plan(
    spec: str, lang: str, native_builds: NativeBuilds, references: dict[tuple[str, bool], RunResult],
    need_rust: None, need_cpp: None,
) -> None:
    got = parse_solve(native_builds.output(spec, lang))
    assert set(got) == JSON_KEYS
    central, admm = references[(spec, True)], references[(spec, False)]
    assert central.status == admm.status  # the references agree
    assert got["status"] == central.status, got["message"]
    if central.status == "optimal":
        assert _close(got["objective"], central.objective), (got["objective"], central.objective)
        assert _close(got["objective"], admm.objective), (got["objective"], admm.objective)
        # the report lists the plan's objects (glued values of every var)
        plan = native_builds.plan(spec)
        assert sorted(got["objects"]) == sorted(o.name for o in plan.objects)
        assert got["iterations"] > 1
    else:
        assert got["objective"] is None and got["objects"] is None
    if central.status == "infeasible":
        assert got["iterations"] == 1 and "`a`" in got["message"]  # the local QP's certificate, at once


@pytest.mark.parametrize("lang", ["rust", "cpp"])
def test_native_coordinator_fails_on_non_finite_local_solutions(
    lang: str, native_builds: NativeBuilds, need_rust: None, need_cpp: None
) -> None:
    """A local solver that returns NaN (then +Inf) at its third call ends the solve at iteration 3
    with ``local_solver_failed`` naming the object, never ``optimal`` with a NaN objective. One
    whose x stays finite but whose objective value is NaN ends the same way (the coordinator asks
    for objectives only once the residuals pass, so not necessarily at iteration 1)."""
    spec = "examples/gpu_fleet.cat"
    last = native_builds.plan(spec).objects[-1].name
    runs = parse_nonfinite(native_builds.output(spec, lang))
    assert len(runs) == 3, runs
    for status, iterations, message in runs[:2]:
        assert status == "local_solver_failed"
        assert iterations == 3
        assert f"`{last}`" in message and "non-finite value in x" in message
    status, iterations, message = runs[2]
    assert status == "local_solver_failed" and iterations >= 1
    assert f"`{last}`" in message and "non-finite objective" in message
