"""Lowering, numpy evaluation of every atom, and exact affine coefficients."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from catopt_dsl.ir.affine import affine_coefficients
from catopt_dsl.ir.evaluate import evaluate
from catopt_dsl.ir.model import IRBinary, IRCall, IRConst, IRIndex, IRNeg, IRParamRef, IRVarRef
from catopt_dsl.check.atoms import ATOMS

from exprcheck_util import Env

DECLS = """
  param A: float[2,3] = [[1, -2, 3], [0.5, 5, -6]];
  param P: float[3,3] = [[2, 1, 0], [1, 3, 0], [0, 0, 4]];
  param c: float[3] = [1, -2, 3];
  param b: float[2] = [0.25, -1];
  param k: int = 2;
  var x: float[3];
  var Y: float[3,2];
  var s: float;"""

Vals = dict[str, np.ndarray]

# (expression, independent numpy definition)
EVAL_CASES: list[tuple[str, Callable[[Vals], np.ndarray]]] = [
    ("sum(x)", lambda v: np.sum(v["x"])),
    ("sum(Y, 0)", lambda v: v["Y"].sum(axis=0)),
    ("sum(Y, 1)", lambda v: v["Y"].sum(axis=1)),
    ("mean(Y)", lambda v: v["Y"].mean()),
    (
        "sum_squares(A @ x - b)",
        lambda v: float(((np.array([[1, -2, 3], [0.5, 5, -6]]) @ v["x"] - [0.25, -1]) ** 2).sum()),
    ),
    ("square(Y)", lambda v: v["Y"] ** 2),
    ("abs(x - 1)", lambda v: np.abs(v["x"] - 1)),
    ("norm1(x - 1)", lambda v: np.abs(v["x"] - 1).sum()),
    ("norm2(Y)", lambda v: np.sqrt((v["Y"] ** 2).sum())),
    ("norm_inf(x - 1)", lambda v: np.abs(v["x"] - 1).max()),
    ("quad_form(x, P)", lambda v: v["x"] @ np.array([[2, 1, 0], [1, 3, 0], [0, 0, 4.0]]) @ v["x"]),
    ("logistic(x - 1)", lambda v: np.log1p(np.exp(v["x"] - 1))),
    ("log_sum_exp(Y)", lambda v: np.log(np.exp(v["Y"]).sum())),
    ("exp(x)", lambda v: np.exp(v["x"])),
    ("log(x)", lambda v: np.log(v["x"])),
    ("sqrt(Y)", lambda v: np.sqrt(v["Y"])),
    ("pos(x - 1)", lambda v: np.clip(v["x"] - 1, 0, None)),
    ("neg(x - 1)", lambda v: np.clip(1 - v["x"], 0, None)),
    ("maximum(x, 1, c)", lambda v: np.maximum(np.maximum(v["x"], 1), [1, -2, 3])),
    ("minimum(Y, 1)", lambda v: np.minimum(v["Y"], 1)),
    ("max(Y)", lambda v: v["Y"].max()),
    ("min(x)", lambda v: v["x"].min()),
    ("huber(x - 1)", lambda v: np.where(np.abs(v["x"] - 1) <= 1, (v["x"] - 1) ** 2, 2 * np.abs(v["x"] - 1) - 1)),
    ("huber(x, 0.5)", lambda v: np.where(np.abs(v["x"]) <= 0.5, v["x"] ** 2, np.abs(v["x"]) - 0.25)),
    ("multiply(c, x)", lambda v: np.array([1, -2, 3]) * v["x"]),
    ("dot(x, c)", lambda v: v["x"] @ [1, -2, 3]),
    ("transpose(Y) @ c", lambda v: v["Y"].T @ [1, -2, 3]),
    ("Y'[1, :]", lambda v: v["Y"].T[1]),
    ("-Y[0:2, 1] / 4 + s", lambda v: -v["Y"][0:2, 1] / 4 + v["s"]),
    ("[x[0], s * k, 1]", lambda v: np.array([v["x"][0], v["s"] * 2, 1])),
    ("A @ Y", lambda v: np.array([[1, -2, 3], [0.5, 5, -6]]) @ v["Y"]),
]


@pytest.fixture(scope="module")
def env() -> Env:
    e = Env(DECLS)
    assert e.decl_errors == []
    return e


@pytest.mark.parametrize("text,ref", EVAL_CASES)
def test_evaluate_matches_numpy(env: Env, text: str, ref: Callable[[Vals], np.ndarray]) -> None:
    ir = env.lower(text)
    rng = np.random.default_rng(7)
    for _ in range(3):
        vals, _ = env.random_vars(rng, positive=True)
        got = evaluate(ir, vals, env.params())
        np.testing.assert_allclose(got, ref(vals), rtol=1e-12, atol=1e-12)


def test_every_atom_is_evaluated_and_tested() -> None:
    from catopt_dsl.solver.cvx import SUPPORTED_ATOMS
    from catopt_dsl.ir.exprs import LOWERED_ATOMS

    # one table entry per atom holds its numpy definition; CVXPY covers every atom lowering keeps
    assert all(callable(spec.numeric) for spec in ATOMS.values())
    assert LOWERED_ATOMS <= set(SUPPORTED_ATOMS) <= set(ATOMS)
    tested = {t.split("(")[0] for t, _ in EVAL_CASES}
    assert set(ATOMS) <= tested


AFFINE_CASES = [
    "A @ x - b",
    "x",
    "Y",
    "Y'",
    "transpose(Y) @ c",
    "c @ Y",
    "A @ Y",
    "Y @ b",
    "Y @ [[1, 2], [3, 4]]",
    "x @ [[1, 2], [3, 4], [5, 6]]",
    "sum(Y, 0) + 1",
    "sum(Y, 1) - x",
    "sum(x) * 3 + mean(Y)",
    "[x[0], 2 * Y[1, 1], s]",
    "[[x[0], s], [1, Y[2, 0]]]",
    "multiply(c, x) + dot(c, x)",
    "(x + 1) / -2",
    "-(Y[1:, :]) + s",
    "x[::2] * k",
    "s - sqrt(k) * x[-1]",
    "exp(c) @ x + c * s",
    "3",
]


@pytest.mark.parametrize("text", AFFINE_CASES)
def test_affine_coefficients_match_evaluate(env: Env, text: str) -> None:
    ir = env.lower(text)
    vars_ = env.irvars()
    B, b = affine_coefficients(ir, vars_, env.params())
    n = sum(v.size for v in vars_)
    assert B.shape == (b.size, n)
    rng = np.random.default_rng(11)
    for _ in range(4):
        vals, z = env.random_vars(rng)
        expected = np.asarray(evaluate(ir, vals, env.params()), dtype=float).reshape(-1)
        np.testing.assert_allclose(B @ z + b, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text", ["square(x)", "x[0] * x[1]", "sqrt(s)", "abs(x) + x", "Y' @ Y", "max(x)"])
def test_affine_coefficients_reject_nonaffine(env: Env, text: str) -> None:
    ir = env.lower(text)
    with pytest.raises(ValueError):
        affine_coefficients(ir, env.irvars(), env.params())


def test_lowering_keeps_params_and_folds_literals(env: Env) -> None:
    ir = env.lower("A @ x - 2 * 3")
    assert isinstance(ir, IRBinary) and ir.op == "-"
    assert isinstance(ir.left, IRBinary) and isinstance(ir.left.left, IRParamRef) and ir.left.left.name == "A"
    assert isinstance(ir.left.right, IRVarRef)
    assert isinstance(ir.right, IRConst) and int(ir.right.value) == 6


def test_lowering_index_vars_fold_and_keys_normalise() -> None:
    e = Env(DECLS, index={"i": 1})
    ir = e.lower("x[-1] + Y[i + 1, :][0] + c[i]")
    # c[i] mentions a param: kept as an index into the param, key folded to an int
    assert isinstance(ir, IRBinary) and isinstance(ir.right, IRIndex)
    assert isinstance(ir.right.base, IRParamRef) and ir.right.key == (1,)
    left = ir.left
    assert isinstance(left, IRBinary)
    assert isinstance(left.left, IRIndex) and left.left.key == (2,)
    inner = left.right
    assert isinstance(inner, IRIndex) and inner.key == (0,)
    assert isinstance(inner.base, IRIndex) and inner.base.key == (2, (0, 2, 1))


def test_lowering_atoms_and_options(env: Env) -> None:
    ir = env.lower("huber(x) + sum(Y, -1) @ c")
    assert isinstance(ir, IRBinary)
    assert isinstance(ir.left, IRCall) and ir.left.atom == "huber" and ir.left.options == (("M", 1.0),)
    summed = ir.right.left  # type: ignore[union-attr]
    assert isinstance(summed, IRCall) and summed.options == (("axis", 1),) and len(summed.args) == 1
    m = env.lower("multiply(c, x)")
    assert isinstance(m, IRBinary) and m.op == "*"
    neg = env.lower("-x'")
    assert isinstance(neg, IRNeg) and isinstance(neg.operand, IRVarRef)


def test_lowering_is_deterministic(env: Env) -> None:
    a = repr(env.lower("sum_squares(A @ x - b) + quad_form(x, P) + [1, 2] @ Y[0:2, 0]"))
    b = repr(env.lower("sum_squares(A @ x - b) + quad_form(x, P) + [1, 2] @ Y[0:2, 0]"))
    assert a == b


def test_lowering_reads_loads_folded_by_the_checker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from catopt_dsl.check.exprs import make_checker
    from catopt_dsl.check.scope import ExprContext, Scope, VarSymbol
    from catopt_dsl.diagnostics import DiagnosticSink
    from catopt_dsl.ir.exprs import lower_expr
    from catopt_dsl.syntax.parser import parse_text

    (tmp_path / "b.csv").write_text("1\n2\n")
    src = 'catopt 1;\nLocalProblem t {\n  var x: float[2];\n  minimize sum_squares(x - load("b.csv"));\n}\n'
    sink = DiagnosticSink()
    spec = parse_text(src, str(tmp_path / "t.cat"), sink)
    assert spec is not None
    body = spec.items[0].body  # type: ignore[union-attr]
    scope = Scope()
    v = body.vars[0]
    scope.define(VarSymbol(v.name, tuple(v.type.dims), v.name_span))
    expr = body.objectives[0].expr
    typer = make_checker(scope, ExprContext(tmp_path), sink)
    assert typer.type(expr) is not None
    (tmp_path / "b.csv").unlink()  # lowering never reads files: the value is in the type map
    ir = lower_expr(expr, typer.type_map(), scope)
    assert float(evaluate(ir, {"x": np.array([1.0, 2.0])}, {})) == 0.0
    assert float(evaluate(ir, {"x": np.array([0.0, 0.0])}, {})) == 5.0


def test_lower_rejects_unchecked_expression(env: Env) -> None:
    from catopt_dsl.check.exprs import make_checker
    from catopt_dsl.ir.exprs import lower_expr

    with pytest.raises(KeyError):
        lower_expr(env.expr("x + 1"), make_checker(env.scope, env.ctx, env.sink).type_map(), env.scope)


def test_lowered_calls_use_only_backend_atoms(env: Env) -> None:
    from catopt_dsl.ir.exprs import LOWERED_ATOMS

    def calls(e: object) -> set[str]:
        out: set[str] = set()
        if isinstance(e, IRCall):
            out.add(e.atom)
        for attr in ("args", "elements"):
            for sub in getattr(e, attr, ()):
                out |= calls(sub)
        for attr in ("left", "right", "operand", "base"):
            if hasattr(e, attr):
                out |= calls(getattr(e, attr))
        return out

    seen: set[str] = set()
    for text, _ in EVAL_CASES:
        seen |= calls(env.lower(text))
    assert seen <= LOWERED_ATOMS
    assert "mean" not in seen and "multiply" not in seen and "dot" not in seen
