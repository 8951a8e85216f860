"""analyze_ir: exact forms, solver classes and closed forms, computed once per plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.ir.analysis import SOLVER_CLASSES, analyze_ir
from catopt_dsl.ir.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "plans" / "cases"


def _values(obj, x: np.ndarray) -> dict[str, np.ndarray]:
    return {v.name: x[v.offset : v.offset + v.size].reshape(v.shape) for v in obj.vars}


@pytest.mark.parametrize("spec", sorted((ROOT / "examples").glob("*.cat")), ids=lambda p: p.stem)
def test_quadratic_forms_agree_with_evaluation(spec: Path) -> None:
    plan = load_plan(spec)
    analysis = analyze_ir(plan)
    rng = np.random.default_rng(0)
    for obj in plan.objects[:8]:
        a = analysis.object(obj.name)
        assert a.solver_class in SOLVER_CLASSES
        if a.objective is None:
            continue
        params = {p.name: np.asarray(p.value) for p in obj.params}
        for _ in range(3):
            x = rng.normal(size=obj.n)
            assert a.objective.value(x) == pytest.approx(float(evaluate(obj.objective, _values(obj, x), params)), rel=1e-9, abs=1e-9)


def test_solver_classes_and_reasons() -> None:
    fleet = analyze_ir(load_plan(ROOT / "examples" / "gpu_fleet.cat"))
    assert fleet.object("tenant_a").solver_class == "box_qp"
    logreg = load_plan(ROOT / "examples" / "federated_logreg.cat")
    first = analyze_ir(logreg).object(logreg.objects[0].name)
    assert first.solver_class == "smooth" and "`logistic`" in first.reason
    eq = load_plan(CASES / "local_equalities_and_coupling.cat")
    assert analyze_ir(eq).object("a").solver_class == "closed_form_qp"
    counts = analyze_ir(logreg).solver_classes()
    assert set(counts) == set(SOLVER_CLASSES) and sum(counts.values()) == len(logreg.objects)


def test_bounds_and_general_rows_are_told_apart() -> None:
    plan = load_plan(CASES / "coupling_infeasible_eq.cat")
    cons = analyze_ir(plan).object("a").constraints
    assert cons is not None and cons.only_bounds
    np.testing.assert_array_equal(cons.lo, [0.0, 0.0])
    np.testing.assert_array_equal(cons.hi, [2.0, 2.0])


def test_shared_closed_forms_look_through_maximize_and_constraints_block_them() -> None:
    neg = analyze_ir(load_plan(CASES / "consensus_norm1_maximize.cat")).shared("model")
    assert neg.closed == {"w": ("norm1", 0.5)} and neg.full_domain
    boxed = analyze_ir(load_plan(CASES / "consensus_shared_box.cat")).shared("model")
    assert boxed.closed is None and not boxed.full_domain and boxed.constraints is not None


def test_one_analysis_per_plan() -> None:
    plan = load_plan(ROOT / "examples" / "gpu_fleet.cat")
    assert analyze_ir(plan) is analyze_ir(plan)
    assert analyze_ir(plan).object("tenant_a") is analyze_ir(plan).object("tenant_a")


def test_a_structure_group_is_held_once_whatever_its_size(tmp_path: Path) -> None:
    """Objects of one structure share one member tuple: a tuple per member made the analysis
    quadratic in memory (800 MB for a 10,000-object plan)."""
    from benchmarks import specgen

    plan = load_plan(specgen.write(tmp_path / "many.cat", specgen.written_out(50)))
    analysis = analyze_ir(plan)
    groups = {id(analysis._group_members(o.name)) for o in plan.objects}
    assert len(groups) == 1 and len(analysis._group_members(plan.objects[0].name)) == 50


def test_lowering_classifies_every_object_and_solve_starts_from_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Classification at lowering time: a compiled plan carries every object's analysis, and a
    solve reads it without analysing anything again."""
    import catopt_dsl.ir.analysis as analysis_module
    from catopt_dsl.solver import solve

    root = Path(__file__).resolve().parents[2]
    plan = load_plan(root / "examples" / "sites_200.cat")
    analysis = analysis_module.analyze_ir(plan)
    assert {o.name for o in plan.objects} <= set(analysis._objects)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("analysed again after lowering")

    monkeypatch.setattr(analysis_module, "analyze_group", refuse)
    result = solve(plan)
    assert result.status == "optimal"
    assert result.local_solvers is not None and result.local_solvers["classes"]["closed_form_qp"] == 200
