"""The calculus table (catopt_dsl/ir/calculus.py): every prox against CVXPY, every derivative
against finite differences, every polyhedral atom against its pieces."""

from __future__ import annotations

import zlib

import cvxpy as cp
import numpy as np
import pytest

from catopt_dsl.check.atoms import ATOMS
from catopt_dsl.ir.analysis import reduce_value, term_values
from catopt_dsl.ir.calculus import CALCULUS, elementwise_parts, proj_l1_ball, proj_simplex
from catopt_dsl.ir.evaluate import apply_atom

M = 0.7  # huber's parameter in these tests


def _psi_cvxpy(atom: str, u: cp.Expression) -> cp.Expression:
    """The convex version sign * atom(u) in CVXPY (elementwise atoms summed)."""
    table = {
        "square": lambda: cp.sum(cp.square(u)),
        "exp": lambda: cp.sum(cp.exp(u)),
        "log": lambda: -cp.sum(cp.log(u)),
        "huber": lambda: cp.sum(cp.huber(u, M)),  # type: ignore[arg-type]
        "abs": lambda: cp.sum(cp.abs(u)),
        "pos": lambda: cp.sum(cp.pos(u)),
        "neg": lambda: cp.sum(cp.neg(u)),
        "sum_squares": lambda: cp.sum_squares(u),
        "norm1": lambda: cp.norm1(u),
        "norm2": lambda: cp.norm(u, 2),
        "norm_inf": lambda: cp.norm_inf(u),
        "max": lambda: cp.max(u),
        "min": lambda: -cp.min(u),
    }
    return table[atom]()


PROX_ATOMS = sorted(a for a, c in CALCULUS.items() if c.prox is not None)


def test_every_atom_of_the_table_is_a_language_atom_and_every_prox_is_tested() -> None:
    assert set(CALCULUS) <= set(ATOMS)
    assert set(PROX_ATOMS) == {"square", "exp", "log", "huber", "abs", "pos", "neg", "sum_squares",
                               "norm1", "norm2", "norm_inf", "max", "min"}


@pytest.mark.parametrize("atom", PROX_ATOMS)
@pytest.mark.parametrize("t", [0.05, 1.0, 7.0])
def test_prox_matches_cvxpy(atom: str, t: float) -> None:
    calc = CALCULUS[atom]
    assert calc.prox is not None
    rng = np.random.default_rng(zlib.crc32(f"{atom}{t}".encode()))
    for scale in (0.3, 3.0):
        v = rng.normal(scale=scale, size=6)
        tt = np.full(6, t) if calc.kind == "elementwise" else np.array(t)
        got = calc.prox(v[None, :], tt[None, ...], M)[0]
        u = cp.Variable(6)
        cons = [u >= 1e-12] if atom == "log" else []
        problem = cp.Problem(cp.Minimize(t * _psi_cvxpy(atom, u) + 0.5 * cp.sum_squares(u - v)), cons)
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        # Clarabel reaches 1e-7 on the polyhedral and quadratic atoms; on exponential cones (exp,
        # log) it stops around 1e-7..1e-6 away. There the closed form is checked exactly instead:
        # its prox objective is no worse than CVXPY's and its stationarity condition holds.
        cone = atom in ("exp", "log")
        np.testing.assert_allclose(got, u.value, atol=1e-5 if cone else 1e-7, rtol=0 if cone else 1e-7)
        mine = float(t * _psi_cvxpy(atom, cp.Constant(got)).value + 0.5 * np.sum((got - v) ** 2))
        assert mine <= float(problem.value) + 1e-10 * max(1.0, abs(float(problem.value)))
        if calc.d1 is not None:  # smooth: u - v + t psi'(u) = 0 exactly
            np.testing.assert_allclose(got - v + t * calc.sign * calc.d1(got, M), 0.0, atol=1e-9)


def test_prox_with_t_zero_is_the_identity_and_elementwise_t_varies() -> None:
    v = np.array([[1.5, -0.2, 0.4]])
    for atom in ("abs", "pos", "neg", "huber", "square", "exp"):
        np.testing.assert_allclose(CALCULUS[atom].prox(v, np.zeros((1, 3)), M), v)  # type: ignore[misc]
    got = CALCULUS["abs"].prox(v, np.array([[1.0, 0.0, 0.1]]), M)  # type: ignore[misc]
    np.testing.assert_allclose(got, [[0.5, -0.2, 0.3]])


SMOOTH_EW = sorted(a for a, c in CALCULUS.items() if c.kind == "elementwise" and c.smooth)


@pytest.mark.parametrize("atom", SMOOTH_EW)
def test_elementwise_derivatives_match_finite_differences(atom: str) -> None:
    calc = CALCULUS[atom]
    assert calc.d1 is not None and calc.d2 is not None
    rng = np.random.default_rng(4)
    u = rng.uniform(0.2, 2.5, size=40) if calc.domain is not None else rng.normal(scale=2.0, size=40)
    opts = {"M": M} if atom == "huber" else {}
    h = 1e-6

    def f(x: np.ndarray) -> np.ndarray:
        return apply_atom(atom, (x,), opts)

    np.testing.assert_allclose(calc.d1(u, M), (f(u + h) - f(u - h)) / (2 * h), rtol=1e-5, atol=1e-6)
    if atom == "huber":
        u = u[np.abs(np.abs(u) - M) > 1e-3]  # the second derivative jumps at +-M
    np.testing.assert_allclose(calc.d2(u, M), (calc.d1(u + h, M) - calc.d1(u - h, M)) / (2 * h), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("atom", SMOOTH_EW)
def test_one_pass_parts_agree_with_the_separate_facts(atom: str) -> None:
    calc = CALCULUS[atom]
    assert calc.d1 is not None and calc.d2 is not None
    rng = np.random.default_rng(9)
    u = rng.uniform(0.2, 2.5, size=40) if calc.domain is not None else rng.normal(scale=30.0, size=40)
    value, d1, d2 = elementwise_parts(atom, u, M)
    np.testing.assert_allclose(value, apply_atom(atom, (u,), {"M": M} if atom == "huber" else {}), rtol=1e-13)
    np.testing.assert_allclose(d1, calc.d1(u, M), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(d2, calc.d2(u, M), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("atom", ["log_sum_exp", "sum_squares"])
def test_reducing_derivatives_match_finite_differences(atom: str) -> None:
    calc = CALCULUS[atom]
    assert calc.grad is not None and calc.hess is not None
    rng = np.random.default_rng(5)
    u = rng.normal(size=(3, 5))
    h = 1e-6
    eye = np.eye(5)
    fd = np.stack([(reduce_value(atom, u + h * eye[j]) - reduce_value(atom, u - h * eye[j])) / (2 * h) for j in range(5)], axis=1)
    np.testing.assert_allclose(calc.grad(u, M), fd, rtol=1e-6, atol=1e-7)
    fd2 = np.stack([(calc.grad(u + h * eye[j], M) - calc.grad(u - h * eye[j], M)) / (2 * h) for j in range(5)], axis=2)
    np.testing.assert_allclose(calc.hess(u, M), fd2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("atom", ["log_sum_exp", "sum_squares", "norm1", "norm2", "norm_inf", "max", "min"])
def test_batched_reducing_values_equal_evaluate(atom: str) -> None:
    rng = np.random.default_rng(6)
    U = rng.normal(size=(4, 7))
    np.testing.assert_allclose(reduce_value(atom, U), [float(apply_atom(atom, (row,))) for row in U], rtol=1e-12)
    np.testing.assert_allclose(term_values(atom, U, np.full((4, 1), 2.0), M), 2.0 * reduce_value(atom, U))


@pytest.mark.parametrize("atom", sorted(a for a, c in CALCULUS.items() if c.pieces is not None))
def test_pieces_are_the_convex_version(atom: str) -> None:
    calc = CALCULUS[atom]
    assert calc.pieces is not None
    rng = np.random.default_rng(7)
    u = rng.normal(size=(5, 4))
    psi = calc.sign * (apply_atom(atom, (u,)) if calc.kind == "elementwise" else reduce_value(atom, u))
    if calc.kind == "elementwise":
        best = np.max([slope * u + offset for slope, offset in calc.pieces], axis=0)
    else:
        best = np.max([slope * u for (slope,) in calc.pieces], axis=(0, 2))
    np.testing.assert_allclose(best, psi)


def test_projections() -> None:
    rng = np.random.default_rng(8)
    v = rng.normal(size=(3, 6))
    s = proj_simplex(v)
    assert np.all(s >= 0) and np.allclose(s.sum(axis=1), 1.0)
    b = proj_l1_ball(v, np.array([0.5, 100.0, 0.0]))
    assert np.abs(b[0]).sum() == pytest.approx(0.5) and np.allclose(b[1], v[1]) and np.all(b[2] == 0.0)
