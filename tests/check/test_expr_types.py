"""Shapes, dtypes, names and indexing: every diagnostic with its exact position."""

from __future__ import annotations

import numpy as np
import pytest

from catopt_dsl.check.atoms import ATOMS
from catopt_dsl.check.exprs import Curvature, Sign, render_expr
from catopt_dsl.ir.evaluate import evaluate

from exprcheck_util import Env, at, span_text

DECLS = """
  param A: float[2,3] = [[1, 2, 3], [4, 5, 6]];
  param M: float[3,3] = [[2, 0, 0], [0, 3, 0], [0, 0, 4]];
  param c: float[3] = [1, -2, 3];
  param k: int = 2;
  param n: int[3] = [1, 2, 3];
  param flag: bool = true;
  var x: float[3];
  var y: float[2];
  var Y: float[3,2];
  var s: float;"""


@pytest.fixture
def env() -> Env:
    e = Env(DECLS)
    assert e.decl_errors == []
    return e


# -- shapes of every atom, cross-checked against numpy evaluation ----------------------------------

ATOM_SHAPES = [
    ("sum(x)", ()),
    ("sum(Y, 0)", (2,)),
    ("sum(Y, 1)", (3,)),
    ("sum(Y, -1)", (3,)),
    ("mean(Y)", ()),
    ("sum_squares(Y)", ()),
    ("square(Y)", (3, 2)),
    ("abs(x)", (3,)),
    ("norm1(x)", ()),
    ("norm2(Y)", ()),
    ("norm_inf(x)", ()),
    ("quad_form(x, M)", ()),
    ("logistic(x)", (3,)),
    ("log_sum_exp(Y)", ()),
    ("exp(Y)", (3, 2)),
    ("log(x)", (3,)),
    ("sqrt(x)", (3,)),
    ("pos(x)", (3,)),
    ("neg(x)", (3,)),
    ("maximum(x, 0)", (3,)),
    ("maximum(x, c, 1)", (3,)),
    ("minimum(0, Y)", (3, 2)),
    ("max(Y)", ()),
    ("min(x)", ()),
    ("huber(x)", (3,)),
    ("huber(Y, 0.5)", (3, 2)),
    ("multiply(c, x)", (3,)),
    ("dot(c, x)", ()),
    ("transpose(Y)", (2, 3)),
    ("Y'", (2, 3)),
    ("x'", (3,)),
    ("A @ x", (2,)),
    ("y @ A", (3,)),
    ("A @ Y", (2, 2)),
    ("x @ c", ()),
    ("Y[1, :]", (2,)),
    ("Y[:, 1]", (3,)),
    ("Y[0:2]", (2, 2)),
    ("x[::2]", (2,)),
    ("[x[0], s, 2 * y[1]]", (3,)),
    ("[[1, 2], [3, 4]] @ y", (2,)),
]


@pytest.mark.parametrize("text,shape", ATOM_SHAPES)
def test_shape_of_every_atom_matches_numpy(env: Env, text: str, shape: tuple[int, ...]) -> None:
    t = env.type(text)
    assert t is not None, env.messages()
    assert t.shape == shape
    assert t.dtype == "float"
    ir = env.lower(text)
    vals, _ = env.random_vars(np.random.default_rng(0), positive=True)
    assert np.shape(evaluate(ir, vals, env.params())) == shape
    assert env.sink.diagnostics == []


def test_atom_table_covers_task_list() -> None:
    required = {
        "sum",
        "sum_squares",
        "square",
        "abs",
        "norm1",
        "norm2",
        "norm_inf",
        "quad_form",
        "logistic",
        "log_sum_exp",
        "exp",
        "log",
        "sqrt",
        "pos",
        "neg",
        "maximum",
        "minimum",
        "max",
        "min",
        "huber",
        "multiply",
        "dot",
        "transpose",
    }
    assert required <= set(ATOMS)
    tested = {t.split("(")[0] for t, _ in ATOM_SHAPES}
    assert set(ATOMS) <= tested


# -- broadcasting and products ----------------------------------------------------------------------


def test_scalar_broadcasts(env: Env) -> None:
    t = env.type("x + 1 - s")
    assert t is not None and t.shape == (3,)


def test_elementwise_shape_mismatch_E0201(env: Env) -> None:
    assert env.type("sum(x + y)") is None
    d = env.only("E0201")
    assert at(d) == env.loc("x + y")
    assert span_text(env, d) == "x + y"
    assert "(3,)" in d.message and "(2,)" in d.message


def test_star_needs_a_scalar_side_E0201(env: Env) -> None:
    assert env.type("c * x") is None
    d = env.only("E0201")
    assert at(d) == env.loc("c * x")
    assert any("multiply" in n.message for n in d.notes)


def test_maximum_shape_mismatch_points_at_argument(env: Env) -> None:
    assert env.type("maximum(x, y)") is None
    d = env.only("E0201")
    assert at(d) == env.loc("y)")


@pytest.mark.parametrize("text", ["A @ y", "x @ y", "s @ x", "Y @ Y", "dot(x, y)", "quad_form(x, A)"])
def test_matmul_shape_E0202(env: Env, text: str) -> None:
    assert env.type(text) is None
    assert env.codes() == ["E0202"]


def test_matmul_error_position(env: Env) -> None:
    assert env.type("sum(A @ y)") is None
    d = env.only("E0202")
    assert at(d) == env.loc("A @ y")


# -- dtypes -------------------------------------------------------------------------------------------


def test_int_arithmetic_stays_int_and_division_floats(env: Env) -> None:
    t = env.type("k * 3 + 1")
    assert t is not None and t.dtype == "int" and int(t.const) == 7
    t = env.type("k / 4")
    assert t is not None and t.dtype == "float" and float(t.const) == 0.5
    t = env.type("n + 0.5")
    assert t is not None and t.dtype == "float"
    np.testing.assert_allclose(t.const, [1.5, 2.5, 3.5])


def test_bool_in_arithmetic_E0203(env: Env) -> None:
    assert env.type("x[0] + flag") is None
    d = env.only("E0203")
    assert at(d) == env.loc("flag")


def test_int_variable_E0203() -> None:
    from catopt_dsl.compile import analyze

    text = "catopt 1;\nLocalProblem t { var m: int[4]; minimize sum(m); }\n"
    (d,) = [d for d in analyze("t.cat", text=text).diagnostics if d.code.value == "E0203"]
    assert "only `float` variables keep the problem convex" in d.message
    assert (d.span.line, d.span.col) == (2, text.splitlines()[1].index("int[4]") + 1)


def test_division_rules(env: Env) -> None:
    assert env.type("x / s") is None
    d = env.only("E0107")
    assert at(d) == env.loc("s")
    env2 = Env(DECLS)
    assert env2.type("x / c") is None
    assert at(env2.only("E0207")) == env2.loc("c")
    env3 = Env(DECLS)
    assert env3.type("x / (k - 2)") is None
    assert at(env3.only("E0203")) == env3.loc("k - 2")


# -- names ----------------------------------------------------------------------------------------------


def test_unknown_name_with_suggestion_E0101(env: Env) -> None:
    assert env.type("sum(A @ xx)") is None
    d = env.only("E0101")
    assert at(d) == env.loc("xx")
    assert [n.message for n in d.notes] == ["did you mean `x`?"]


def test_unknown_name_that_is_an_atom(env: Env) -> None:
    assert env.type("x + sqrt") is None
    d = env.only("E0101")
    assert "call it" in d.notes[0].message


def test_unknown_function_E0105(env: Env) -> None:
    assert env.type("sum_square(x)") is None
    d = env.only("E0105")
    assert at(d) == env.loc("sum_square")
    assert (d.span.end_col - d.span.col) == len("sum_square")
    assert d.notes[0].message == "did you mean `sum_squares`?"


def test_calling_a_name_E0105(env: Env) -> None:
    assert env.type("x(1)") is None
    assert env.only("E0105").message == "`x` is not a function"


@pytest.mark.parametrize("text", ["sqrt(x, x)", "sum()", "maximum(x)", "quad_form(x)", "huber(x, 1, 2)"])
def test_arity_E0106(env: Env, text: str) -> None:
    assert env.type(text) is None
    d = env.only("E0106")
    assert at(d) == env.loc(text.split("(")[0])


def test_attr_and_star_E0107(env: Env) -> None:
    assert env.type("x.w") is None
    d = env.only("E0107")
    assert d.message == "`.` access is only allowed in Limit constraints"
    assert at(d) == env.loc("x.w")
    env2 = Env(DECLS)
    assert env2.type("x[*]") is None
    assert at(env2.only("E0107")) == env2.loc("*")


# -- indexing -------------------------------------------------------------------------------------------


def test_negative_indices_and_slices_fold(env: Env) -> None:
    t = env.type("c[-1] + c[0:2][1]")
    assert t is not None and float(t.const) == 3.0 + -2.0
    t = env.type("A[-1, 1:]")
    assert t is not None
    np.testing.assert_array_equal(t.const, [5.0, 6.0])


@pytest.mark.parametrize(
    "text,sub",
    [("x[3]", "3"), ("x[-4]", "-4"), ("Y[0, 2]", "2"), ("x[1:5]", "5"), ("A[0, -9:]", "-9")],
)
def test_index_out_of_range_E0204(env: Env, text: str, sub: str) -> None:
    assert env.type(text) is None
    d = env.only("E0204")
    assert at(d) == env.loc(sub, nth=0 if sub != "3" else 0)


def test_too_many_indices_E0204(env: Env) -> None:
    assert env.type("x[0, 1]") is None
    d = env.only("E0204")
    assert at(d) == env.loc("1]")


def test_empty_slice_and_bad_step_E0204(env: Env) -> None:
    assert env.type("x[2:1]") is None
    assert env.codes() == ["E0204"]
    env2 = Env(DECLS)
    assert env2.type("x[::0]") is None
    assert at(env2.only("E0204")) == env2.loc("0]")


def test_index_must_be_constant_int(env: Env) -> None:
    assert env.type("c[x]") is None  # a variable index
    assert at(env.only("E0107")) == env.loc("x]")
    env2 = Env(DECLS)
    assert env2.type("c[1.0]") is None
    assert at(env2.only("E0203")) == env2.loc("1.0")
    env3 = Env(DECLS)
    assert env3.type("c[n]") is None
    assert env3.codes() == ["E0207"]


def test_family_index_is_a_constant_int() -> None:
    env = Env(DECLS, index={"i": 2})
    t = env.type("c[i] + n[i - 1]")
    assert t is not None and float(t.const) == 3.0 + 2.0
    assert env.sink.diagnostics == []
    env_far = Env(DECLS, index={"i": 7})
    assert env_far.type("c[i]") is None
    assert at(env_far.only("E0204")) == env_far.loc("i]")


# -- array literals, folding and signs ----------------------------------------------------------------


def test_array_literal_shapes(env: Env) -> None:
    t = env.type("[[1, 2], [3, 4.5]]")
    assert t is not None and t.shape == (2, 2) and t.dtype == "float"
    assert env.type("[[1, 2], [3]]") is None
    d = env.only("E0201")
    assert at(d) == env.loc("[3]")


def test_array_literal_of_bool_and_numbers_E0203(env: Env) -> None:
    assert env.type("[1, true]") is None
    assert at(env.only("E0203")) == env.loc("true")


def test_constant_folding_and_sign(env: Env) -> None:
    t = env.type("sum(multiply(c, c)) / 2 - k")
    assert t is not None and t.curvature is Curvature.CONSTANT
    assert float(t.const) == pytest.approx((1 + 4 + 9) / 2 - 2)
    assert t.sign is Sign.NONNEG
    t = env.type("-abs(x)")
    assert t is not None and t.sign is Sign.NONPOS and t.curvature is Curvature.CONCAVE


def test_nonfinite_folding_E0604(env: Env) -> None:
    assert env.type("x[0] + exp(1000)") is None
    d = env.only("E0604")
    assert at(d) == env.loc("exp(1000)")
    env2 = Env(DECLS)
    assert env2.type("log(c)") is None  # log(-2) is NaN
    assert env2.codes() == ["E0604"]


def test_render_expr_round_trips_precedence(env: Env) -> None:
    for text in ["(x + 1) * 2", "-(x - c)", "A @ (x + c)", "x - (c - 1)", "Y'[0, 1:]", "sum(Y, 0) / 2"]:
        assert render_expr(env.expr(text)) == text
