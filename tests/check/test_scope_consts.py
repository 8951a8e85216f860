"""Scopes, eval_const, and the constant-argument rules of atoms."""

from __future__ import annotations

import numpy as np
import pytest

from catopt_dsl.check.atoms import psd_kind
from catopt_dsl.check.exprs import eval_const
from catopt_dsl.check.scope import IndexSymbol, ParamSymbol, Scope, VarSymbol
from catopt_dsl.span import Span

from exprcheck_util import Env, at

SP = Span.unknown()


def test_scope_chain_define_lookup_names() -> None:
    outer = Scope()
    assert outer.define(VarSymbol("x", (3,), SP)) is None
    first = ParamSymbol("p", "float", (), np.array(1.0), SP)
    assert outer.define(first) is None
    dup = outer.define(ParamSymbol("p", "int", (), np.array(2), SP))
    assert dup is first and outer.lookup("p") is first  # first definition wins
    inner = Scope(outer)
    inner.define(IndexSymbol("i", 4, SP))
    inner.define(IndexSymbol("x", 9, SP))  # shadowing an outer name is allowed
    assert isinstance(inner.lookup("x"), IndexSymbol)
    assert isinstance(outer.lookup("x"), VarSymbol)
    assert inner.lookup("p") is first and inner.lookup("nope") is None
    assert inner.names() == ["i", "p", "x"]
    assert "i" in inner and "i" not in outer


DECLS = """
  param P: float[2,2] = [[2, 0], [0, 1]];
  param m: float = 0.5;
  var x: float[2];
  var t: float;"""


def test_eval_const_values_and_E0107() -> None:
    env = Env(DECLS, index={"i": 3})
    sink = env.sink
    v = eval_const(env.expr("P @ [1, i] + m"), env.scope, env.ctx, sink)
    assert v is not None
    np.testing.assert_allclose(v, [2.5, 3.5])
    assert eval_const(env.expr("m + t"), env.scope, env.ctx, sink) is None
    d = env.only("E0107")
    assert at(d) == env.loc("t")


@pytest.mark.parametrize(
    "text,code,sub",
    [
        ("quad_form(x, P * t)", "E0107", "t"),
        ("huber(x, t)", "E0107", "t"),
        ("huber(x, -1)", "E0203", "-1"),
        ("huber(x, [1, 2])", "E0203", "[1, 2]"),
        ("sum(x, 1.0)", "E0203", "1.0"),
        ("sum(x, 1)", "E0204", "1)"),
        ("sum(x, t)", "E0107", "t"),
    ],
)
def test_constant_atom_arguments(text: str, code: str, sub: str) -> None:
    env = Env(DECLS)
    assert env.type(text) is None
    assert at(env.only(code)) == env.loc(sub)


def test_huber_with_param_threshold() -> None:
    env = Env(DECLS)
    t = env.type("huber(x, m)")
    assert t is not None and t.shape == (2,)


def test_psd_kind() -> None:
    assert psd_kind(np.eye(3)) == "psd"
    assert psd_kind(-np.eye(2)) == "nsd"
    assert psd_kind(np.diag([1.0, -1.0])) == "indefinite"
    # asymmetric: only the symmetric part matters (x'Px = x'((P+P')/2)x)
    assert psd_kind(np.array([[1.0, 4.0], [-4.0, 1.0]])) == "psd"
    assert psd_kind(None) == "unknown"
