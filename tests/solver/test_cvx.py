"""IR -> CVXPY: every node and atom evaluated at random points against numpy references."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

import factories as F
from catopt_dsl.ir.model import IRIndex, IRStack, IRTranspose
from catopt_dsl.solver import to_cvxpy
from catopt_dsl.solver.cvx import SUPPORTED_ATOMS, stacked_views

RNG = np.random.default_rng(42)
XV = RNG.normal(size=3)
MV = RNG.normal(size=(2, 3))
PP = RNG.normal(size=(3, 3))
PP = PP @ PP.T
x, m = F.V("x", (3,)), F.V("m", (2, 3))
pos_x = F.call("exp", x)  # positive argument for log/sqrt


def _huber(v: np.ndarray, M: float) -> np.ndarray:
    a = np.abs(v)
    return np.where(a <= M, v**2, 2 * M * a - M**2)


CASES = {
    "sum": (F.call("sum", m), lambda: MV.sum()),
    "sum_axis0": (F.call("sum", m, axis=0), lambda: MV.sum(axis=0)),
    "sum_axis1": (F.call("sum", m, axis=1), lambda: MV.sum(axis=1)),
    "sum_squares": (F.call("sum_squares", m), lambda: (MV**2).sum()),
    "square": (F.call("square", x), lambda: XV**2),
    "abs": (F.call("abs", x), lambda: np.abs(XV)),
    "norm1": (F.call("norm1", m), lambda: np.abs(MV).sum()),
    "norm2": (F.call("norm2", m), lambda: np.sqrt((MV**2).sum())),
    "norm_inf": (F.call("norm_inf", m), lambda: np.abs(MV).max()),
    "quad_form": (F.call("quad_form", x, F.P("P", (3, 3))), lambda: XV @ PP @ XV),
    "logistic": (F.call("logistic", x), lambda: np.log1p(np.exp(XV))),
    "log_sum_exp": (F.call("log_sum_exp", m), lambda: np.log(np.exp(MV).sum())),
    "exp": (F.call("exp", x), lambda: np.exp(XV)),
    "log": (F.call("log", pos_x), lambda: XV),
    "sqrt": (F.call("sqrt", pos_x), lambda: np.exp(XV / 2)),
    "pos": (F.call("pos", x), lambda: np.maximum(XV, 0)),
    "neg": (F.call("neg", x), lambda: np.maximum(-XV, 0)),
    "maximum": (F.call("maximum", x, F.C(0.1), F.neg(x)), lambda: np.maximum(np.maximum(XV, 0.1), -XV)),
    "minimum": (F.call("minimum", x, F.C(0.2)), lambda: np.minimum(XV, 0.2)),
    "max": (F.call("max", m), lambda: MV.max()),
    "min": (F.call("min", m), lambda: MV.min()),
    "max_axis": (F.call("max", m, axis=1), lambda: MV.max(axis=1)),
    "huber_default": (F.call("huber", x), lambda: _huber(XV, 1.0)),
    "huber_option": (F.call("huber", x, M=0.3), lambda: _huber(XV, 0.3)),
    "huber_arg": (F.IRCall("huber", (x, F.C(0.5)), (3,)), lambda: _huber(XV, 0.5)),
    "multiply": (F.call("multiply", F.C([1.0, 2.0, 3.0]), x), lambda: XV * [1, 2, 3]),
    "dot": (F.call("dot", F.C([1.0, 2.0, 3.0]), x), lambda: XV @ [1, 2, 3]),
    "transpose": (F.call("transpose", m), lambda: MV.T),
    # nodes
    "add_broadcast": (F.add(x, F.C(2.0)), lambda: XV + 2),
    "sub": (F.sub(F.C(1.0), x), lambda: 1 - XV),
    "scalar_mul": (F.mul(F.C(3.0), m), lambda: 3 * MV),
    "elementwise_mul": (F.mul(F.C([1.0, -1.0, 2.0]), x), lambda: XV * [1, -1, 2]),
    "div": (F.div(x, F.C(4.0)), lambda: XV / 4),
    "matvec": (F.matmul(m, x), lambda: MV @ XV),
    "vecvec": (F.matmul(x, x), lambda: XV @ XV),
    "const_mat": (F.matmul(F.P("P", (3, 3)), x), lambda: PP @ XV),
    "vecmat": (F.matmul(F.C([1.0, 2.0]), m), lambda: np.array([1.0, 2.0]) @ MV),
    "neg_node": (F.neg(m), lambda: -MV),
    "index_int": (IRIndex(m, (1, 2), ()), lambda: MV[1, 2]),
    "index_slice": (IRIndex(m, (0, (0, 3, 2)), (2,)), lambda: MV[0, 0:3:2]),
    "index_negative": (IRIndex(x, (-1,), ()), lambda: XV[-1]),
    "transpose_node": (IRTranspose(m, (3, 2)), lambda: MV.T),
    "stack_scalars": (IRStack((IRIndex(x, (0,), ()), F.C(5.0)), (2,)), lambda: np.array([XV[0], 5.0])),
    "stack_vectors": (IRStack((x, F.mul(F.C(2.0), x)), (2, 3)), lambda: np.stack([XV, 2 * XV])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_value_matches_numpy(case: str) -> None:
    expr, ref = CASES[case]
    vars_ = F.make_vars([("x", (3,)), ("m", (2, 3))])
    stacked = cp.Variable(9)
    stacked.value = np.concatenate([XV, MV.reshape(-1)])
    out = to_cvxpy(expr, stacked_views(stacked, vars_), {"P": PP})
    assert isinstance(out, cp.Expression)
    assert tuple(out.shape) == tuple(expr.shape)
    np.testing.assert_allclose(out.value, ref(), rtol=1e-9, atol=1e-12)


def test_every_atom_is_covered() -> None:
    covered = {CASES[c][0].atom for c in CASES if isinstance(CASES[c][0], F.IRCall)}
    assert covered == set(SUPPORTED_ATOMS)


def test_constants_fold_to_numpy() -> None:
    out = to_cvxpy(F.add(F.C([1.0, 2.0]), F.P("q", (2,))), {}, {"q": np.array([3.0, 4.0])})
    np.testing.assert_allclose(out, [4.0, 6.0])


def test_curvature_is_preserved() -> None:
    vars_ = F.make_vars([("x", (3,))])
    views = stacked_views(cp.Variable(3), vars_)
    assert to_cvxpy(F.call("norm1", x), views, {}).is_convex()
    assert to_cvxpy(F.call("log", x), views, {}).is_concave()
    assert to_cvxpy(F.call("quad_form", x, F.P("P", (3, 3))), views, {"P": PP}).is_dcp()


def test_unknown_atom_raises() -> None:
    with pytest.raises(ValueError):
        to_cvxpy(F.IRCall("frobnicate", (x,), ()), {"x": cp.Variable(3)}, {})


#: cases using our extensions beyond the language's atom table (``max`` with an axis)
EXTENSIONS = {"max_axis"}


@pytest.mark.parametrize("case", sorted(set(CASES) - EXTENSIONS))
def test_agrees_with_the_ir_evaluator(case: str) -> None:
    """Cross-check against ``catopt_dsl.ir.evaluate`` (written independently) where it exists."""
    evaluate_mod = pytest.importorskip("catopt_dsl.ir.evaluate")
    expr, _ = CASES[case]
    vars_ = F.make_vars([("x", (3,)), ("m", (2, 3))])
    stacked = cp.Variable(9)
    stacked.value = np.concatenate([XV, MV.reshape(-1)])
    out = to_cvxpy(expr, stacked_views(stacked, vars_), {"P": PP})
    ref = evaluate_mod.evaluate(expr, {"x": XV, "m": MV}, {"P": PP})
    np.testing.assert_allclose(out.value, ref, rtol=1e-9, atol=1e-12)
