"""Set-up per family: shared row templates, batched method choice, batched reports and gluing.

Each test compares the batched path with the per-object computation it replaces (or with the
definition it implements), on plans written as a user would.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.ir.analysis import analyze_ir
from catopt_dsl.ir.evaluate import evaluate
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver import SolveOptions, build_layout, build_workers, solve
from catopt_dsl.solver.coordinator import Coordinator
from catopt_dsl.solver.glue import glue_solution, glue_stacked
from catopt_dsl.solver.local.base import choose_method, choose_methods
from catopt_dsl.solver.local.split import _GEMM_ONE_THREAD, _gemm
from catopt_dsl.solver.shared import SharedProx
from catopt_dsl.solver.worker import FastBatch


def _save(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float64), allow_pickle=False)
    path.write_bytes(buf.getvalue())


def _interleaved(tmp_path: Path) -> IRPlan:
    """Two families of one structure with another object between them (so one batch whose members
    are not consecutive objects), consensus on w, sharing on h, a shared block with two closed terms."""
    rng = np.random.default_rng(3)
    for name in ("a", "c"):
        _save(tmp_path / f"{name}_A.npy", rng.normal(size=(3, 5, 3)))
        _save(tmp_path / f"{name}_b.npy", rng.normal(size=(3, 5)))
    text = (
        "catopt 1;\n"
        "schema Hours v1 { h: float[2]; }\n"
        "SharedVariables model { var w: float[3]; var v: float[2]; minimize 0.2 * norm1(w) + 0.5 * sum_squares(v); }\n"
        "SharedVariables pool { param cap: float[2] = [1.0, 2.0]; }\n"
        "LocalProblem a[i in 0..2] {\n"
        '    param A: float[5, 3] = load("a_A.npy")[i];\n'
        '    param b: float[5] = load("a_b.npy")[i];\n'
        "    var w: float[3];\n"
        "    var h: float[2];\n"
        "    minimize sum_squares(A @ w - b) + sum_squares(h - 1.5);\n"
        "}\n"
        "LocalProblem mid {\n"
        "    var w: float[3];\n"
        "    var v: float[2];\n"
        "    minimize sum_squares(w - 0.5) + sum_squares(v + 1.0);\n"
        "}\n"
        "LocalProblem c[i in 0..2] {\n"
        '    param A: float[5, 3] = load("c_A.npy")[i];\n'
        '    param b: float[5] = load("c_b.npy")[i];\n'
        "    var w: float[3];\n"
        "    var h: float[2];\n"
        "    minimize sum_squares(A @ w - b) + sum_squares(h - 1.5);\n"
        "}\n"
        "Morphism ua[i in 0..2] : a[i] -> pool carries Hours v1 { h = h; }\n"
        "Morphism uc[i in 0..2] : c[i] -> pool carries Hours v1 { h = h; }\n"
        "Limit agree on model { a[*].w == model.w; mid.w == model.w; c[*].w == model.w; mid.v == model.v; }\n"
        "Limit cap_limit on pool { sum(*.h) <= cap; }\n"
        "Colimit plan of model, pool;\n"
    )
    spec = tmp_path / "interleaved.cat"
    spec.write_text(text, encoding="utf-8")
    return load_plan(spec)


def _consensus(tmp_path: Path, sites: int = 6) -> IRPlan:
    rng = np.random.default_rng(5)
    _save(tmp_path / "A.npy", rng.normal(size=(sites, 8, 4)))
    _save(tmp_path / "b.npy", rng.normal(size=(sites, 8)))
    spec = tmp_path / "consensus.cat"
    spec.write_text(
        "catopt 1;\n"
        "SharedVariables model { var w: float[4]; minimize 0.1 * norm1(w); }\n"
        f"LocalProblem site[i in 0..{sites - 1}] {{\n"
        '    param A: float[8, 4] = load("A.npy")[i];\n'
        '    param b: float[8] = load("b.npy")[i];\n'
        "    var w: float[4];\n"
        "    minimize sum_squares(A @ w - b);\n"
        "}\n"
        "Limit agree on model { site[*].w == model.w; }\n"
        "Colimit plan of model;\n",
        encoding="utf-8",
    )
    return load_plan(spec)


def test_members_linking_the_same_vars_share_one_read_only_row_template(tmp_path: Path) -> None:
    layout = build_layout(_consensus(tmp_path))
    first = layout.objects[0].M
    assert all(o.M is first for o in layout.objects)
    assert not first.flags.writeable and not layout.objects[0].e.flags.writeable
    np.testing.assert_array_equal(first, np.eye(4))
    # coupling rows are each member's own: no sharing there
    layout = build_layout(_interleaved(tmp_path))
    a0, a1 = layout.object_rows("a[0]"), layout.object_rows("a[1]")
    assert a0.M is not a1.M and a0.M.shape == (5, 5)
    np.testing.assert_array_equal(a0.M[:3], np.eye(5)[:3])  # w's consensus rows first
    np.testing.assert_array_equal(a0.M[3:], np.eye(5)[3:])  # then the coupling term h


def test_consensus_positions_point_at_the_linked_vars(tmp_path: Path) -> None:
    layout = build_layout(_interleaved(tmp_path))
    x = np.arange(layout.total_n, dtype=np.float64)
    for (shared, var), where in layout.consensus_x.items():
        rows = layout.consensus_index[(shared, var)]
        assert where.shape == rows.shape
        # the rows of a consensus link select exactly those x positions
        M = np.zeros((layout.total_rows, layout.total_n))
        for o, xs in zip(layout.objects, layout.x_slices):
            M[o.rows, xs] = o.M
        np.testing.assert_array_equal((M @ x)[rows], x[where])


def test_methods_chosen_per_family_are_the_per_member_choices(tmp_path: Path) -> None:
    for plan in (_interleaved(tmp_path), _consensus(tmp_path)):
        layout = build_layout(plan)
        analysis = analyze_ir(plan)
        for o in layout.objects:
            a = analysis.object(o.obj.name)
            sep = bool(np.count_nonzero(o.M.T @ o.M * (1.0 - np.eye(o.M.shape[1]))) == 0)
            (batched,) = choose_methods(a.group, np.array([a.index]), np.array([sep]))
            assert batched == choose_method(a.group, a.index, o.M)
        workers = build_workers(layout, SolveOptions())
        for w in workers:
            assert (w.method, w.method_reason) == choose_method(w.analysis.group, w.analysis.index, w.M)


def test_interleaved_members_are_one_batch_and_solve_as_the_index_path_does(tmp_path: Path) -> None:
    plan = _interleaved(tmp_path)
    layout = build_layout(plan)
    workers = build_workers(layout, SolveOptions())
    rows = {o.obj.name: (o.rows, layout.x_slices[i], i) for i, o in enumerate(layout.objects)}
    batch = FastBatch(workers, rows)
    members = {tuple(w.name for w in ws) for _, ws, _ in batch.batches}
    assert ("a[0]", "a[1]", "a[2]", "c[0]", "c[1]", "c[2]") in members
    spans = dict(zip((tuple(w.name for w in ws) for _, ws, _ in batch.batches), batch._spans))
    assert spans[("a[0]", "a[1]", "a[2]", "c[0]", "c[1]", "c[2]")] is None  # not consecutive objects
    # the batched reports are each object's own report
    rng = np.random.default_rng(0)
    d = rng.normal(size=layout.total_rows)
    batch.step_flat(d, 0.7)
    a, x, f = np.zeros(layout.total_rows), np.zeros(layout.total_n), np.zeros(len(workers))
    batch.report_flat(a, x, f)
    for i, (o, w) in enumerate(zip(layout.objects, workers)):
        c = w.contribution()
        np.testing.assert_allclose(a[o.rows], c.a, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(x[layout.x_slices[i]], c.x)
        assert f[i] == pytest.approx(c.objective, rel=1e-12, abs=1e-12)
    result = solve(plan, SolveOptions(eps_abs=1e-8, eps_rel=1e-8))
    reference = solve(plan, SolveOptions(eps_abs=1e-8, eps_rel=1e-8, fast_path=False))
    assert result.status == reference.status == "optimal"
    assert result.objective == pytest.approx(reference.objective, rel=1e-6)


def test_stacked_glue_is_the_per_object_glue(tmp_path: Path) -> None:
    for plan in (_interleaved(tmp_path), _consensus(tmp_path)):
        layout = build_layout(plan)
        workers = build_workers(layout, SolveOptions())
        rng = np.random.default_rng(1)
        x = rng.normal(size=layout.total_n)
        z = {
            blk.name: {v.name: rng.normal(size=v.shape) for v in blk.vars} for blk in plan.shared
        }
        objects = {
            o.obj.name: {v.name: x[xs.start + v.offset : xs.start + v.offset + v.size].reshape(v.shape) for v in o.obj.vars}
            for o, xs in zip(layout.objects, layout.x_slices)
        }
        glued, total = glue_solution(plan, objects, z)
        x_before = x.copy()
        stacked, total_stacked = glue_stacked(layout, x, z, [w.analysis for w in workers])
        np.testing.assert_array_equal(x, x_before)  # the input is not glued in place
        assert total_stacked == total
        assert glued.keys() == stacked.keys()
        for name in glued:
            for var in glued[name]:
                np.testing.assert_array_equal(stacked[name][var], glued[name][var])


def test_the_solver_state_does_not_alias_the_coordinator(tmp_path: Path) -> None:
    plan = _interleaved(tmp_path)
    result = solve(plan, SolveOptions(max_iter=7))
    assert result.state is not None and result.state.duals and result.state.secant
    coordinator = Coordinator(build_layout(plan), SolveOptions(), result.state)
    state = coordinator.state(result.state.x)
    duals = {k: v.copy() for k, v in state.duals.items()}
    targets = {k: v.copy() for k, v in state.targets.items()}
    secant = {k: (a.copy(), y.copy()) for k, (a, y) in state.secant.items()}
    assert targets and coordinator._secant is not None
    # a run that goes on moves its vectors in place: the state taken before must not move
    coordinator.u[:] += 1.0
    coordinator.t[:] += 1.0
    coordinator._secant.a[:] += 1.0
    coordinator._secant.yhat[:] += 1.0
    for k, v in state.duals.items():
        np.testing.assert_array_equal(v, duals[k])
    for k, v in state.targets.items():
        np.testing.assert_array_equal(v, targets[k])
    for k, (a, y) in state.secant.items():
        np.testing.assert_array_equal(a, secant[k][0])
        np.testing.assert_array_equal(y, secant[k][1])


def test_closed_form_g_is_the_tree_value(tmp_path: Path) -> None:
    plan = _interleaved(tmp_path)
    block = plan.shared_block("model")
    prox = SharedProx(block)
    assert prox.closed is not None
    z = np.random.default_rng(2).normal(size=block.n)
    values = {v.name: z[v.offset : v.offset + v.size].reshape(v.shape) for v in block.vars}
    assert block.objective is not None
    assert prox.g_value(z) == pytest.approx(float(evaluate(block.objective, values, prox.params)), rel=1e-15)


@pytest.mark.parametrize("k", [1, 200, 2000])
def test_gemm_in_slices_is_the_whole_product(k: int) -> None:
    rng = np.random.default_rng(k)
    X, B = rng.normal(size=(k, 24)), rng.normal(size=(24, 47))
    sliced = k * 24 * 47 > _GEMM_ONE_THREAD
    assert sliced == (k == 2000)
    np.testing.assert_allclose(_gemm(X, B), X @ B, rtol=1e-13, atol=1e-12)
