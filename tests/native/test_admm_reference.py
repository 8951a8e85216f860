"""Acceptance 4: with the same closed-form quadratic LocalSolver (each object's IR objective as
1/2 x'Px + q'x + r, constraints ignored), the Rust and C++ coordinators reproduce the Python
reference (catopt_dsl.solver's Coordinator): same status, same iteration count, objective within
1e-6 relative. Consensus (consensus_lasso, with an L1 shared term), sharing (gpu_fleet) and both
(mixed_plan)."""

from __future__ import annotations

import math

import pytest
from nativetools import REFERENCE_SPECS, NativeBuilds, parse_nonfinite, parse_ref, python_reference


@pytest.fixture(scope="module")
def references(native_builds: NativeBuilds) -> dict[str, object]:
    return {spec: python_reference(native_builds.plan(spec)) for spec in REFERENCE_SPECS}


@pytest.mark.parametrize("lang", ["rust", "cpp"])
@pytest.mark.parametrize("spec", REFERENCE_SPECS)
def test_native_coordinator_matches_python(
    spec: str, lang: str, native_builds: NativeBuilds, references: dict[str, object], need_rust: None, need_cpp: None
) -> None:
    ref = references[spec]
    assert ref.status == "optimal" and ref.iterations > 1  # a real run, not a trivial one
    got = parse_ref(native_builds.output(spec, lang))
    assert got.status == ref.status
    assert got.iterations == ref.iterations
    assert ref.objective is not None and got.objective is not None
    assert math.isclose(got.objective, ref.objective, rel_tol=1e-6, abs_tol=1e-9), (got.objective, ref.objective)


@pytest.mark.parametrize("lang", ["rust", "cpp"])
def test_native_coordinator_fails_on_non_finite_local_solutions(
    lang: str, native_builds: NativeBuilds, need_rust: None, need_cpp: None
) -> None:
    """A local solver that returns NaN (then +Inf) at its third call ends the solve at iteration 3
    with ``local_solver_failed`` naming the object, never ``optimal`` with a NaN objective."""
    spec = "examples/gpu_fleet.cat"
    last = native_builds.plan(spec).objects[-1].name
    runs = parse_nonfinite(native_builds.output(spec, lang))
    assert len(runs) == 2, runs
    for status, iterations, message in runs:
        assert status == "local_solver_failed"
        assert iterations == 3
        assert f"`{last}`" in message and "non-finite" in message
