"""Runs of family members (``Layout.runs``): what a solve reads per run is what it read per object.

The reported values, the state's x, the warm-start state and the prices are read by run (one
reshape of a family's range); each test builds the per-object (per row block) answer from the
layout's objects and blocks and compares, on plans with a one-link family, a family linking two
vars, a family with coupling terms and objects between families.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catopt_dsl.compile import load_plan
from catopt_dsl.ir.model import IRPlan
from catopt_dsl.solver import SolveOptions, build_layout, build_workers, solve
from catopt_dsl.solver.admm import stacked_x
from catopt_dsl.solver.coordinator import Coordinator, _stacked_transpose, _strided
from catopt_dsl.solver.glue import stacked_values
from catopt_dsl.solver.layout import Layout
from catopt_dsl.solver.rho import Secant
from catopt_dsl.solver.worker import LocalWorker
from tests.solver.test_family_setup import _consensus, _interleaved


def _two_links(tmp_path: Path) -> IRPlan:
    """A family linking two vars (two row blocks per member), a lone object, then a one-link family."""
    spec = tmp_path / "two_links.cat"
    spec.write_text(
        "catopt 1;\n"
        "SharedVariables model { var w: float[3]; var v: float[2]; minimize 0.1 * norm1(w); }\n"
        "LocalProblem s[i in 0..3] {\n"
        "    var w: float[3];\n"
        "    var v: float[2];\n"
        "    var k: float;\n"
        "    minimize sum_squares(w - 1.0) + sum_squares(v + 2.0) + square(k - 3.0);\n"
        "}\n"
        "LocalProblem lone { var w: float[3]; minimize sum_squares(w); }\n"
        "LocalProblem t[i in 0..2] { var v: float[2]; minimize sum_squares(v - 0.5); }\n"
        "Limit agree on model { s[*].w == model.w; s[*].v == model.v; lone.w == model.w; t[*].v == model.v; }\n"
        "Colimit plan of model;\n",
        encoding="utf-8",
    )
    return load_plan(spec)


def _second_link_last(tmp_path: Path) -> IRPlan:
    """A family linking two vars and nothing after it: the second var's links are strided from
    row 3, and the last member's rows end with its link, short of a whole stride."""
    spec = tmp_path / "second_link_last.cat"
    spec.write_text(
        "catopt 1;\n"
        "SharedVariables model { var w: float[3]; var v: float[2]; }\n"
        "LocalProblem s[i in 0..3] {\n"
        "    param c: float = i;\n"
        "    var w: float[3];\n"
        "    var v: float[2];\n"
        "    minimize sum_squares(w - c) + sum_squares(v + c);\n"
        "}\n"
        "Limit agree on model { s[*].w == model.w; s[*].v == model.v; }\n"
        "Colimit plan of model;\n",
        encoding="utf-8",
    )
    return load_plan(spec)


PLANS = {"consensus": _consensus, "interleaved": _interleaved, "two_links": _two_links, "second_link_last": _second_link_last}


def _layout(name: str, tmp_path: Path) -> Layout:
    return build_layout(PLANS[name](tmp_path))


@pytest.mark.parametrize("name", sorted(PLANS))
def test_runs_cover_every_object_once_with_strided_ranges(name: str, tmp_path: Path) -> None:
    layout = _layout(name, tmp_path)
    assert [i for run in layout.runs for i in range(run.start, run.stop)] == list(range(len(layout.objects)))
    for run in layout.runs:
        for j, i in enumerate(range(run.start, run.stop)):
            o = layout.objects[i]
            assert layout.x_slices[i].start == run.x_start + j * run.n
            assert o.obj.vars == run.vars
            if run.r >= 0:  # uniform rows: no coupling terms, the run's link pattern
                assert o.rows.start == run.row_start + j * run.r and o.rows.stop - o.rows.start == run.r
                assert not o.terms and o.links == run.links
    if name == "consensus":
        assert len(layout.runs) == 1 and layout.runs[0].stop == 6
    if name == "two_links":
        assert [(r.stop - r.start, len(r.links)) for r in layout.runs] == [(4, 2), (1, 1), (3, 1)]


@pytest.mark.parametrize("name", sorted(PLANS))
def test_lazy_row_blocks_are_the_links_and_terms_in_row_order(name: str, tmp_path: Path) -> None:
    layout = _layout(name, tmp_path)
    for o in layout.objects:
        local = 0
        for b in o.blocks:
            assert b.object == o.obj.name and b.local.start == local
            assert (b.rows.start, b.rows.stop) == (o.rows.start + b.local.start, o.rows.start + b.local.stop)
            if b.kind == "consensus":
                assert b.key == f"consensus:agree:{o.obj.name}.{b.var}={b.shared}.{b.shared_var}"
                var = o.obj.var(b.var or "")
                M = o.M[b.local]
                np.testing.assert_array_equal(M[:, var.offset : var.offset + var.size], np.eye(var.size))
            local = b.local.stop
        assert local == o.rows.stop - o.rows.start
    keys = [b.key for b in layout.blocks]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_values_and_state_x_by_run_are_the_per_object_slices(name: str, tmp_path: Path) -> None:
    layout = _layout(name, tmp_path)
    x = np.random.default_rng(1).normal(size=layout.total_n)
    values = stacked_values(layout, x)
    xs = stacked_x(layout, x)
    assert list(values) == list(xs) == [o.obj.name for o in layout.objects]
    for o, sl in zip(layout.objects, layout.x_slices):
        np.testing.assert_array_equal(xs[o.obj.name], x[sl])
        assert np.shares_memory(xs[o.obj.name], x)  # views, as before
        assert list(values[o.obj.name]) == [v.name for v in o.obj.vars]
        for v in o.obj.vars:
            got = values[o.obj.name][v.name]
            assert got.shape == tuple(v.shape)
            np.testing.assert_array_equal(got.reshape(-1), x[sl][v.offset : v.offset + v.size])


@pytest.mark.parametrize("name", sorted(PLANS))
def test_state_and_prices_by_run_are_the_per_block_ones(name: str, tmp_path: Path) -> None:
    layout = _layout(name, tmp_path)
    coordinator = Coordinator(layout, SolveOptions())
    rng = np.random.default_rng(2)
    R = layout.total_rows
    coordinator.u = rng.normal(size=R)
    coordinator.t = rng.normal(size=R)
    coordinator._secant = Secant(rng.normal(size=R), rng.normal(size=R))
    state = coordinator.state({})
    blocks = layout.blocks
    u, t, sec = coordinator.u, coordinator.t, coordinator._secant
    assert list(state.duals) == [b.key for b in blocks]
    assert list(state.targets) == [b.key for b in blocks if b.kind == "coupling"]
    assert list(state.secant) == [b.key for b in blocks]
    for b in blocks:
        np.testing.assert_array_equal(state.duals[b.key], u[b.rows])
        np.testing.assert_array_equal(state.secant[b.key][0], sec.a[b.rows])
        np.testing.assert_array_equal(state.secant[b.key][1], sec.yhat[b.rows])
        if b.kind == "coupling":
            np.testing.assert_array_equal(state.targets[b.key], t[b.rows])
    # the state holds copies: the coordinator moving on does not move it
    before = {k: v.copy() for k, v in state.duals.items()}
    coordinator.u += 1.0
    for k, v in state.duals.items():
        np.testing.assert_array_equal(v, before[k])
    prices = coordinator.prices()["consensus"]
    expected = {
        f"{o.obj.name}.{b.var}": sec.yhat[b.rows].reshape(o.obj.var(b.var or "").shape)
        for o in layout.objects
        for b in o.blocks
        if b.kind == "consensus"
    }
    assert list(prices) == list(expected)
    for k, v in expected.items():
        assert prices[k].shape == v.shape
        np.testing.assert_array_equal(prices[k], v)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_a_state_read_by_run_warm_starts_as_the_per_block_one(name: str, tmp_path: Path) -> None:
    plan = PLANS[name](tmp_path)
    first = solve(plan, SolveOptions(max_iter=6))
    assert first.state is not None
    coordinator = Coordinator(build_layout(plan), SolveOptions(), first.state)
    for b in coordinator.layout.blocks:
        np.testing.assert_array_equal(coordinator.u[b.rows], first.state.duals[b.key])
    again = solve(plan, warm_start=first.state)
    cold = solve(plan)
    assert again.status == cold.status == "optimal"
    assert again.objective == pytest.approx(cold.objective, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_coordinator_shortcuts_are_the_products_and_gathers(name: str, tmp_path: Path) -> None:
    layout = _layout(name, tmp_path)
    coordinator = Coordinator(layout, SolveOptions())
    rng = np.random.default_rng(4)
    v = rng.normal(size=layout.total_rows)
    # M' v: the identity shortcut (when taken) is the sparse product's value, exactly
    np.testing.assert_array_equal(coordinator._MT(v), _stacked_transpose(layout) @ v)
    # interleaved: every object's rows (consensus and coupling) are its vars in order; s[*] in
    # two_links keeps one var out of its rows
    assert coordinator._MT_identity == (name != "two_links")
    # a family's links through a strided view are the gathered rows
    for key, index in layout.consensus_index.items():
        np.testing.assert_array_equal(coordinator._links_of(v, key, index), v[index])
    if name == "consensus":
        assert all(found is not None for found in coordinator._strides.values())
    if name == "two_links":
        # w: s[0..3] every 5 rows from row 0, then lone at row 20 (still the stride); v: s[*]
        # every 5 rows from row 3, then t[0], t[1], t[2] 2 apart: gathered
        assert coordinator._strides[("model", "w")] == (0, 5)
        assert coordinator._strides[("model", "v")] is None
    if name == "second_link_last":
        assert coordinator._strides[("model", "v")] == (3, 5)  # 3 + 4 * 5 > 20 rows: still a view
    # the targets written through the views are the targets written by index
    coordinator.z = {k: rng.normal(size=z.shape) for k, z in coordinator.z.items()}
    coordinator._sync_consensus_targets()
    for (shared, var_name), index in layout.consensus_index.items():
        var = layout.plan.shared_block(shared).var(var_name)
        want = np.broadcast_to(coordinator.z[shared][var.offset : var.offset + var.size], index.shape)
        np.testing.assert_array_equal(coordinator.t[index], want)


def test_strided_recognises_only_equal_strides() -> None:
    base = 7 + 5 * np.arange(4)[:, None] + np.arange(3)[None, :]
    assert _strided(base) == (7, 5)
    assert _strided(base[:1]) == (7, 3)
    shuffled = base[[0, 2, 1, 3]]
    assert _strided(shuffled) is None
    uneven = base.copy()
    uneven[3] += 1
    assert _strided(uneven) is None
    overlapping = 2 * np.arange(4)[:, None] + np.arange(3)[None, :]  # stride 2 < size 3
    assert _strided(overlapping) is None


@pytest.mark.parametrize("name", sorted(PLANS))
def test_family_workers_are_the_workers_built_one_by_one(name: str, tmp_path: Path) -> None:
    layout = _layout(name, tmp_path)
    workers = build_workers(layout, SolveOptions())
    for w in workers:
        alone = LocalWorker(w.obj, w.M, w.e, analysis=w.analysis)
        for attr in ("name", "n", "r", "method", "method_reason", "status", "message", "fallbacks", "inaccurate", "unbounded", "fast"):
            assert getattr(w, attr) == getattr(alone, attr), (w.name, attr)
        assert w.accuracy == alone.accuracy
        np.testing.assert_array_equal(w.x, alone.x)
        np.testing.assert_array_equal(w.M, alone.M)
        np.testing.assert_array_equal(w.e, alone.e)


def test_objects_with_equal_sizes_but_other_var_orders_get_their_own_rows(tmp_path: Path) -> None:
    # same n, same link: only the var order tells their M apart (a template per pattern must see it)
    spec = tmp_path / "orders.cat"
    spec.write_text(
        "catopt 1;\n"
        "SharedVariables model { var w: float[3]; }\n"
        "LocalProblem p { var w: float[3]; var v: float[2]; minimize sum_squares(w) + sum_squares(v); }\n"
        "LocalProblem q { var v: float[2]; var w: float[3]; minimize sum_squares(w - 1.0) + sum_squares(v); }\n"
        "Limit agree on model { p.w == model.w; q.w == model.w; }\n"
        "Colimit plan of model;\n",
        encoding="utf-8",
    )
    layout = build_layout(load_plan(spec))
    p, q = layout.object_rows("p"), layout.object_rows("q")
    np.testing.assert_array_equal(p.M, np.eye(5)[:3])
    np.testing.assert_array_equal(q.M, np.eye(5)[2:])
    assert len(layout.runs) == 2
    np.testing.assert_array_equal(layout.consensus_x[("model", "w")], [[0, 1, 2], [7, 8, 9]])


@pytest.mark.parametrize("name", sorted(PLANS))
def test_consensus_indices_list_every_link_in_plan_order(name: str, tmp_path: Path) -> None:
    layout = _layout(name, tmp_path)
    rows: dict[tuple[str, str], list[list[int]]] = {}
    xs: dict[tuple[str, str], list[list[int]]] = {}
    for o, sl in zip(layout.objects, layout.x_slices):
        for b in o.blocks:
            if b.kind == "consensus":
                var = o.obj.var(b.var or "")
                key = (b.shared or "", b.shared_var or "")
                rows.setdefault(key, []).append(list(range(b.rows.start, b.rows.stop)))
                xs.setdefault(key, []).append(list(range(sl.start + var.offset, sl.start + var.offset + var.size)))
    assert list(layout.consensus_index) == list(rows)
    for key in rows:
        np.testing.assert_array_equal(layout.consensus_index[key], rows[key])
        np.testing.assert_array_equal(layout.consensus_x[key], xs[key])
        assert layout.consensus_index[key].dtype == np.int64


def test_a_family_whose_last_link_ends_the_rows_solves_to_the_centralised_optimum(tmp_path: Path) -> None:
    """The consensus targets are written through strided views; one that fell back to a gathered
    copy lost them, and the solve stopped `optimal` at a wrong point."""
    from catopt_dsl.solver import solve_centralized

    plan = _second_link_last(tmp_path)
    got, ref = solve(plan), solve_centralized(plan)
    assert got.status == ref.status == "optimal"
    assert got.objective == pytest.approx(ref.objective, rel=1e-5, abs=1e-6)
