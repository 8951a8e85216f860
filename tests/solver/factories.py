"""Hand-built IRPlans with known structure (and, where cheap, known optima) for solver tests.

No frontend involved: IR nodes are built directly with correct shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from catopt_dsl.ir.model import (
    IRBinary,
    IRCall,
    IRColimit,
    IRConst,
    IRConsensus,
    IRConstraint,
    IRCoupling,
    IRCouplingTerm,
    IRExpr,
    IRNeg,
    IRObject,
    IRParam,
    IRParamRef,
    IRPlan,
    IRShared,
    IRVar,
    IRVarRef,
    frozen_array,
)

Shape = tuple[int, ...]

# ------------------------------------------------------------------------------------------
# expression helpers (shapes computed like the checker would)
# ------------------------------------------------------------------------------------------


def C(value: Any) -> IRConst:
    arr = frozen_array(value)
    return IRConst(arr, tuple(arr.shape))


def V(name: str, shape: Shape = ()) -> IRVarRef:
    return IRVarRef(name, tuple(shape))


def P(name: str, shape: Shape = ()) -> IRParamRef:
    return IRParamRef(name, tuple(shape))


def _bshape(a: IRExpr, b: IRExpr) -> Shape:
    if a.shape == ():
        return tuple(b.shape)
    if b.shape == ():
        return tuple(a.shape)
    assert a.shape == b.shape, (a.shape, b.shape)
    return tuple(a.shape)


def add(a: IRExpr, b: IRExpr) -> IRBinary:
    return IRBinary("+", a, b, _bshape(a, b))


def sub(a: IRExpr, b: IRExpr) -> IRBinary:
    return IRBinary("-", a, b, _bshape(a, b))


def mul(a: IRExpr, b: IRExpr) -> IRBinary:
    return IRBinary("*", a, b, _bshape(a, b))


def div(a: IRExpr, b: IRExpr) -> IRBinary:
    return IRBinary("/", a, b, tuple(a.shape))


def neg(a: IRExpr) -> IRNeg:
    return IRNeg(a, tuple(a.shape))


def matmul(a: IRExpr, b: IRExpr) -> IRBinary:
    sa, sb = tuple(a.shape), tuple(b.shape)
    if len(sa) == 1 and len(sb) == 1:
        shape: Shape = ()
    elif len(sa) == 2 and len(sb) == 1:
        shape = (sa[0],)
    elif len(sa) == 1 and len(sb) == 2:
        shape = (sb[1],)
    else:
        shape = (sa[0], sb[1])
    return IRBinary("@", a, b, shape)


_SCALAR = {"sum_squares", "norm1", "norm2", "norm_inf", "quad_form", "log_sum_exp", "max", "min", "dot"}


def call(atom: str, *args: IRExpr, **options: Any) -> IRCall:
    if atom in _SCALAR and not ("axis" in options and options["axis"] is not None):
        shape: Shape = ()
    elif atom == "sum":
        axis = options.get("axis")
        if axis is None:
            shape = ()
        else:
            s = list(args[0].shape)
            del s[int(axis)]
            shape = tuple(s)
    elif atom in ("log_sum_exp", "max", "min"):
        s = list(args[0].shape)
        del s[int(options["axis"])]
        shape = tuple(s)
    elif atom == "transpose":
        shape = tuple(reversed(args[0].shape))
    elif atom in ("maximum", "minimum", "multiply"):
        shape = ()
        for a in args:
            if a.shape != ():
                shape = tuple(a.shape)
    else:
        shape = tuple(args[0].shape)
    return IRCall(atom, tuple(args), shape, tuple(sorted(options.items())))


def total(*terms: IRExpr) -> IRExpr:
    out = terms[0]
    for t in terms[1:]:
        out = add(out, t)
    return out


# ------------------------------------------------------------------------------------------
# declaration helpers
# ------------------------------------------------------------------------------------------


def make_vars(specs: list[tuple[str, Shape]]) -> tuple[IRVar, ...]:
    out = []
    offset = 0
    for name, shape in specs:
        v = IRVar(name, tuple(shape), offset)
        out.append(v)
        offset += v.size
    return tuple(out)


def make_params(values: dict[str, Any]) -> tuple[IRParam, ...]:
    out = []
    for name, value in values.items():
        arr = frozen_array(value)
        out.append(IRParam(name, "float", tuple(arr.shape), arr))
    return tuple(out)


def obj(
    name: str,
    vars: list[tuple[str, Shape]],
    objective: IRExpr,
    constraints: list[tuple[IRExpr, str, IRExpr]] | None = None,
    params: dict[str, Any] | None = None,
) -> IRObject:
    return IRObject(
        name=name,
        family=None,
        index=None,
        platform=None,
        adapter=None,
        functors=(),
        params=make_params(params or {}),
        vars=make_vars(vars),
        sense="minimize",
        objective=objective,
        constraints=tuple(IRConstraint(l, op, r) for l, op, r in (constraints or [])),
    )


def shared(
    name: str,
    vars: list[tuple[str, Shape]],
    objective: IRExpr | None = None,
    constraints: list[tuple[IRExpr, str, IRExpr]] | None = None,
    params: dict[str, Any] | None = None,
) -> IRShared:
    return IRShared(
        name=name,
        params=make_params(params or {}),
        vars=make_vars(vars),
        objective=objective,
        constraints=tuple(IRConstraint(l, op, r) for l, op, r in (constraints or [])),
    )


def link(o: IRObject, var: str, s: IRShared, svar: str, limit: str = "agree") -> IRConsensus:
    return IRConsensus(limit, o.name, var, s.name, svar, o.var(var).shape)


def var_term(o: IRObject, var: str, coupling: str, scale: float = 1.0, offset: Any = 0.0) -> IRCouplingTerm:
    """A coupling term ``scale * o.var + offset`` (whole var, flattened)."""
    v = o.var(var)
    B = np.zeros((v.size, o.n))
    B[np.arange(v.size), v.offset + np.arange(v.size)] = scale
    b = np.broadcast_to(np.asarray(offset, dtype=np.float64), (v.size,)).copy()
    expr = add(mul(C(scale), V(var, v.shape)), C(np.asarray(offset) * np.ones(v.shape)))
    return IRCouplingTerm(f"m_{o.name}_{coupling}", o.name, var, expr, frozen_array(B), frozen_array(b))


def coupling(name: str, shared_block: str, sense: str, rhs: Any, terms: list[IRCouplingTerm]) -> IRCoupling:
    r = np.atleast_1d(np.asarray(rhs, dtype=np.float64))
    return IRCoupling(name, shared_block, sense, frozen_array(r.reshape(-1)), tuple(r.shape), tuple(terms))


def plan(
    name: str,
    objects: list[IRObject],
    shared_blocks: list[IRShared] = (),  # type: ignore[assignment]
    consensus: list[IRConsensus] = (),  # type: ignore[assignment]
    couplings: list[IRCoupling] = (),  # type: ignore[assignment]
    colimit: tuple[str, ...] | None = None,
) -> IRPlan:
    return IRPlan(
        name=name,
        source=f"{name}.cat",
        spec_hash="0" * 64,
        schemas=(),
        shared=tuple(shared_blocks),
        objects=tuple(objects),
        morphisms=(),
        consensus=tuple(consensus),
        couplings=tuple(couplings),
        functors=(),
        colimit=None if colimit is None else IRColimit("out", tuple(colimit)),
    )


# ------------------------------------------------------------------------------------------
# problem factories
# ------------------------------------------------------------------------------------------


def two_agree(a1: float = 1.0, a2: float = 3.0) -> IRPlan:
    """Two objects ``minimize (x - a_i)^2`` agreeing on one scalar ``S.w``. Optimum w = (a1+a2)/2."""
    o1 = obj("p1", [("x", ())], call("sum_squares", sub(V("x"), P("a"))), params={"a": a1})
    o2 = obj("p2", [("x", ())], call("sum_squares", sub(V("x"), P("a"))), params={"a": a2})
    s = shared("S", [("w", ())])
    return plan("two_agree", [o1, o2], [s], [link(o1, "x", s, "w"), link(o2, "x", s, "w")])


def _lsq_tenant(name: str, A: np.ndarray, b: np.ndarray, extra: IRExpr | None = None) -> IRObject:
    n = A.shape[1]
    f: IRExpr = call("sum_squares", sub(matmul(P("A", A.shape), V("w", (n,))), P("b", b.shape)))
    if extra is not None:
        f = add(f, extra)
    return obj(name, [("w", (n,))], f, params={"A": A, "b": b})


def consensus_regression(
    tenants: int = 4,
    m: int = 12,
    n: int = 5,
    g: str = "norm1",
    lam: float = 0.5,
    seed: int = 0,
    cvxpy_terms: bool = False,
) -> IRPlan:
    """Consensus least squares with a shared ``g(w)`` (``norm1``, ``sum_squares``, ``none``, or
    ``norm2_box``: ``lam * norm2(w)`` with ``-0.3 <= w <= 0.3`` on the block, which needs the CVXPY
    z-update).

    ``cvxpy_terms`` adds ``0.1 * sum(maximum(w, -0.5))`` locally: an atom no local method
    handles, so the objects need the CVXPY x-update.
    """
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=n) * (rng.random(n) < 0.6)
    objects = []
    for i in range(tenants):
        A = rng.normal(size=(m, n))
        b = A @ w_true + 0.1 * rng.normal(size=m)
        extra = mul(C(0.1), call("sum", call("maximum", V("w", (n,)), C(-0.5)))) if cvxpy_terms else None
        objects.append(_lsq_tenant(f"tenant_{i}", A, b, extra))
    if g == "norm1":
        gexpr: IRExpr | None = mul(P("lam"), call("norm1", V("w", (n,))))
    elif g == "sum_squares":
        gexpr = mul(P("lam"), call("sum_squares", V("w", (n,))))
    elif g == "norm2_box":
        gexpr = mul(P("lam"), call("norm2", V("w", (n,))))
    else:
        gexpr = None
    box = [(V("w", (n,)), "<=", C(0.3)), (V("w", (n,)), ">=", C(-0.3))] if g == "norm2_box" else []
    s = shared("model", [("w", (n,))], gexpr, box, params={"lam": lam})
    return plan(f"consensus_{g}", objects, [s], [link(o, "w", s, "w", "fit") for o in objects])


def sharing(sense: str = "<=", tenants: int = 3, seed: int = 1, vector: bool = False) -> IRPlan:
    """Tenants ``minimize sum_squares(x - target)`` with ``x >= 0`` sharing a capacity.

    ``<=``: sum x <= 0.6 * sum target (binding); ``==``: sum x == 0.8 * sum target;
    ``>=``: sum x >= 1.3 * sum target (binding). ``vector`` gives 2-vectors (per resource).
    """
    rng = np.random.default_rng(seed)
    shape: Shape = (2,) if vector else ()
    objects, terms = [], []
    targets = []
    for i in range(tenants):
        target = rng.uniform(1.0, 3.0, size=shape)
        targets.append(target)
        o = obj(
            f"t{i}",
            [("x", shape)],
            call("sum_squares", sub(V("x", shape), P("target", shape))),
            [(V("x", shape), ">=", C(np.zeros(shape)))],
            params={"target": target},
        )
        objects.append(o)
        terms.append(var_term(o, "x", "cap"))
    tot = np.sum(targets, axis=0)
    factor = {"<=": 0.6, "==": 0.8, ">=": 1.3}[sense]
    s = shared("pool", [("price", shape)])
    return plan(f"sharing_{sense}", objects, [s], [], [coupling("cap", "pool", sense, factor * tot, terms)])


def mixed(seed: int = 2) -> IRPlan:
    """Consensus on a shared model ``w`` (with a ridge g) *and* a coupling on per-tenant loads.

    Tenant i: ``sum_squares(A w - b) + square(load - d) + 0.2*logistic(load)`` over (w, load),
    ``load >= 0``, linked by ``w == model.w`` and ``sum_i 2*load_i + 0.5 <= cap``.
    """
    rng = np.random.default_rng(seed)
    n = 3
    objects, terms = [], []
    demand = []
    for i in range(3):
        A = rng.normal(size=(6, n))
        b = rng.normal(size=6)
        d = rng.uniform(1.0, 2.0)
        demand.append(d)
        f = total(
            call("sum_squares", sub(matmul(P("A", A.shape), V("w", (n,))), P("b", (6,)))),
            call("square", sub(V("load"), P("d"))),
            mul(C(0.2), call("logistic", V("load"))),
        )
        o = obj(
            f"m{i}", [("w", (n,)), ("load", ())], f, [(V("load"), ">=", C(0.0))], {"A": A, "b": b, "d": d}
        )
        objects.append(o)
        terms.append(var_term(o, "load", "budget", scale=2.0, offset=0.5))
    s = shared("model", [("w", (n,))], mul(C(0.3), call("sum_squares", V("w", (n,)))))
    cap = 2.0 * 0.7 * sum(demand) + 1.5
    return plan(
        "mixed",
        objects,
        [s],
        [link(o, "w", s, "w", "fit") for o in objects],
        [coupling("budget", "model", "<=", cap, terms)],
    )


def quadratic_plan(seed: int = 3, with_equality: bool = True) -> IRPlan:
    """A quadratic consensus plan eligible for the fast path (quad_form, linear terms, equalities)."""
    rng = np.random.default_rng(seed)
    n = 3
    objects = []
    for i in range(4):
        L = rng.normal(size=(n, n))
        Q = L @ L.T + 0.5 * np.eye(n)
        q = rng.normal(size=n)
        f = total(
            mul(C(0.5), call("quad_form", V("w", (n,)), P("Q", (n, n)))),
            matmul(P("q", (n,)), V("w", (n,))),
            call("sum_squares", sub(V("v", (2,)), P("c", (2,)))),
        )
        cons = []
        if with_equality:
            cons.append((call("sum", V("v", (2,))), "==", add(IRIndexed(n), C(1.0))))
        o = obj(f"q{i}", [("w", (n,)), ("v", (2,))], f, cons, {"Q": Q, "q": q, "c": rng.normal(size=2)})
        objects.append(o)
    s = shared("S", [("w", (n,))], mul(C(0.1), call("sum_squares", V("w", (n,)))))
    return plan("quadratic", objects, [s], [link(o, "w", s, "w") for o in objects])


def IRIndexed(n: int) -> IRExpr:
    """``w[0]`` for a length-n ``w`` (used inside an equality)."""
    from catopt_dsl.ir.model import IRIndex

    return IRIndex(V("w", (n,)), (0,), ())


def infeasible_coupling() -> IRPlan:
    """Lower bounds 2 + 3 > capacity 4: ``x1 >= 2``, ``x2 >= 3``, ``x1 + x2 <= 4``."""
    objects, terms = [], []
    for i, lb in enumerate((2.0, 3.0)):
        o = obj(
            f"t{i}",
            [("x", ())],
            call("sum_squares", sub(V("x"), C(1.0))),
            [(V("x"), ">=", P("lb"))],
            {"lb": lb},
        )
        objects.append(o)
        terms.append(var_term(o, "x", "cap"))
    s = shared("pool", [("price", ())])
    return plan("infeasible_coupling", objects, [s], [], [coupling("cap", "pool", "<=", 4.0, terms)])


def infeasible_local() -> IRPlan:
    """Object ``bad`` asks for ``x >= 2`` and ``x <= 1``."""
    good = obj("good", [("x", ())], call("sum_squares", sub(V("x"), C(1.0))))
    bad = obj(
        "bad", [("x", ())], call("sum_squares", V("x")), [(V("x"), ">=", C(2.0)), (V("x"), "<=", C(1.0))]
    )
    s = shared("S", [("w", ())])
    return plan("infeasible_local", [good, bad], [s], [link(good, "x", s, "w"), link(bad, "x", s, "w")])
