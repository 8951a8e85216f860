"""Convexity (DCP): accept/reject tables, and the smallest offending sub-expression is named."""

from __future__ import annotations

import pytest

from catopt_dsl.check.atoms import Curvature, Mono, compose
from catopt_dsl.check.exprs import Curvature as ExprCurvature

from exprcheck_util import Env, at, span_text

DECLS = """
  param A: float[2,3] = [[1, 2, 3], [4, 5, 6]];
  param b: float[2] = [1, 2];
  param P: float[3,3] = [[2, 0, 0], [0, 1, 0], [0, 0, 3]];
  param Q: float[3,3] = [[1, 0, 0], [0, -1, 0], [0, 0, 1]];
  param Nd: float[3,3] = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]];
  param w: float[3] = [1, 2, 3];
  param u: float[3] = [1, -1, 1];
  var x: float[3];
  var t: float;"""


def fresh() -> Env:
    e = Env(DECLS)
    assert e.decl_errors == []
    return e


CURVATURES = [
    ("sum_squares(A @ x - b)", "convex"),
    ("-log(t)", "convex"),
    ("log(t)", "concave"),
    ("sqrt(t)", "concave"),
    ("maximum(x, 0)", "convex"),
    ("minimum(x, 1)", "concave"),
    ("square(pos(x))", "convex"),
    ("square(sqrt(t))", "unknown"),
    ("sqrt(square(t))", "unknown"),
    ("abs(x) + x", "convex"),
    ("-abs(x)", "concave"),
    ("2 * norm2(x) - 3 * log(t)", "convex"),
    ("-2 * norm2(x)", "concave"),
    ("norm1(x) / -2", "concave"),
    ("w @ abs(x)", "convex"),
    ("u @ abs(x)", "unknown"),
    ("multiply(w, square(x))", "convex"),
    ("dot(w, exp(x))", "convex"),
    ("x[0] * x[1]", "unknown"),
    ("t * t", "unknown"),
    ("quad_form(x, P)", "convex"),
    ("quad_form(x, Nd)", "concave"),
    ("quad_form(x, Q)", "unknown"),
    ("neg(log(t))", "convex"),
    ("neg(exp(t))", "unknown"),
    ("exp(square(t))", "convex"),
    ("log_sum_exp(A @ x)", "convex"),
    ("logistic(-x)", "convex"),
    ("huber(x - 1, 2)", "convex"),
    ("max(x) - min(x)", "convex"),
    ("sum(x) + mean(x)", "affine"),
    ("[norm2(x), square(t)]", "convex"),
    ("sqrt(sum(x))", "concave"),
    ("sqrt(sum_squares(x))", "unknown"),
    ("3", "constant"),
]


@pytest.mark.parametrize("text,curv", CURVATURES)
def test_curvature_table(text: str, curv: str) -> None:
    env = fresh()
    t = env.type(text)
    assert t is not None, env.messages()
    assert t.curvature.value == curv


OBJECTIVES = [
    # (objective, accepted, blamed sub-expression, its curvature phrase)
    ("minimize sum_squares(A @ x - b)", True, None, None),
    ("minimize -log(t)", True, None, None),
    ("maximize log(t) + sqrt(t)", True, None, None),
    ("minimize maximum(x[0], 0)", True, None, None),
    ("minimize sqrt(t)", False, "sqrt(t)", "is concave"),
    ("minimize sum_squares(x) + 2 * sqrt(t)", False, "sqrt(t)", "is concave"),
    ("minimize norm1(x) - square(t)", False, "square(t)", "is convex"),
    ("maximize square(t)", False, "square(t)", "is convex"),
    ("minimize x[0] * x[1]", False, "x[0] * x[1]", "has unknown curvature"),
    ("minimize quad_form(x, Q)", False, "quad_form(x, Q)", "has unknown curvature"),
    ("minimize square(log(t))", False, "log(t)", "is concave"),
    ("minimize u @ exp(x)", False, "exp(x)", "is convex"),
    ("minimize exp(-sqrt(t) + log(t))", False, "log(t)", "is concave"),
]


@pytest.mark.parametrize("stmt,ok,blamed,phrase", OBJECTIVES)
def test_objective_table(stmt: str, ok: bool, blamed: str | None, phrase: str | None) -> None:
    env = fresh()
    assert env.objective(stmt) is ok
    if ok:
        assert env.sink.diagnostics == []
        return
    d = env.only("E0301")
    assert blamed is not None and phrase is not None
    assert span_text(env, d) == blamed
    sense = stmt.split()[0]
    want = "convex" if sense == "minimize" else "concave"
    assert d.message == f"`{blamed}` {phrase}, but `{sense}` needs a {want} objective"


def test_sqrt_message_exact() -> None:
    env = fresh()
    assert not env.objective("minimize sqrt(x[0])")
    d = env.only("E0301")
    assert d.message == "`sqrt(x[0])` is concave, but `minimize` needs a convex objective"
    assert at(d) == env.loc("sqrt")


def test_indefinite_quad_form_explains_eigenvalues() -> None:
    env = fresh()
    assert not env.objective("minimize quad_form(x, Q)")
    d = env.only("E0301")
    assert any("indefinite" in n.message and "-1" in n.message for n in d.notes)


def test_nested_blame_has_a_reason_note() -> None:
    env = fresh()
    assert not env.objective("minimize square(log(t))")
    d = env.only("E0301")
    assert any("not monotone" in n.message for n in d.notes)


def test_objective_must_be_scalar_E0207() -> None:
    env = fresh()
    assert not env.objective("minimize square(x)")
    d = env.only("E0207")
    assert at(d) == env.loc("square(x)")


CONSTRAINTS = [
    ("norm2(x) <= t", True, None),
    ("square(t) <= 1", True, None),
    ("log(t) >= 1", True, None),
    ("1 >= square(t)", True, None),
    ("A @ x == b", True, None),
    ("x >= 0", True, None),
    ("square(t) >= 1", False, "square(t)"),
    ("sqrt(t) <= 2", False, "sqrt(t)"),
    ("t <= square(t)", False, "square(t)"),
    ("1 <= log(t) + square(t)", False, "square(t)"),
    ("square(t) == 1", False, "square(t)"),
    ("x[0] * x[1] <= 1", False, "x[0] * x[1]"),
]


@pytest.mark.parametrize("text,ok,blamed", CONSTRAINTS)
def test_constraint_table(text: str, ok: bool, blamed: str | None) -> None:
    env = fresh()
    assert env.constraint(text) is ok
    if ok:
        assert env.sink.diagnostics == []
        return
    d = env.only("E0302")
    assert blamed is not None and span_text(env, d) == blamed


def test_constraint_messages() -> None:
    env = fresh()
    assert not env.constraint("square(t) >= 1")
    assert env.only("E0302").message == "`square(t)` is convex, but the left side of `>=` must be concave"
    env = fresh()
    assert not env.constraint("square(t) == 1")
    d = env.only("E0302")
    assert d.message == "`square(t)` is convex, but both sides of `==` must be affine"
    assert any(n.kind == "help" for n in d.notes)


def test_constraint_shape_mismatch_E0201() -> None:
    env = fresh()
    assert not env.constraint("A @ x <= x")
    d = env.only("E0201")
    assert at(d) == env.loc("A @ x <= x")


def test_check_affine_E0303() -> None:
    env = fresh()
    t = env.affine("2 * x[0] + sum(x) - t / 4")
    assert t is not None and t.curvature is ExprCurvature.AFFINE
    assert env.affine("x[0] + 3 * abs(t)") is None
    d = env.only("E0303")
    assert d.message == "`abs(t)` is convex, but morphism field `hours` must be affine"
    assert span_text(env, d) == "abs(t)"


def test_compose_rule_table() -> None:
    C, A, V, K, U = (Curvature.CONSTANT, Curvature.AFFINE, Curvature.CONVEX, Curvature.CONCAVE, Curvature.UNKNOWN)
    inc, dec, non = Mono.INCREASING, Mono.DECREASING, Mono.NONMONOTONE
    assert compose(V, [A], [non]) is V
    assert compose(V, [V], [inc]) is V
    assert compose(V, [K], [dec]) is V
    assert compose(V, [V], [non]) is U
    assert compose(K, [K], [inc]) is K
    assert compose(A, [V, K], [inc, dec]) is V
    assert compose(A, [V, V], [inc, dec]) is U
    assert compose(U, [C, A], [non, non]) is U
    assert compose(U, [C, C], [non, non]) is C
