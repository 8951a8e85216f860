"""The numeric facts of each atom that the local solvers use: derivatives, proxes, LP pieces.

One table, :data:`CALCULUS`, one entry per atom, beside the language's curvature table
(:data:`catopt_dsl.check.atoms.ATOMS`: shapes, curvature, monotonicity) and the atom's value
(:data:`catopt_dsl.ir.evaluate.ATOM_IMPLS`). Adding an atom to what the local solvers handle is a
change to this table and nothing else: the analysis (``analysis.py``) classifies objects from it
and the solvers (``catopt_dsl/solver/local``) evaluate and prox through it.

An entry gives, for ``phi`` the atom applied to ``u`` (``u`` the affine argument the analysis has
extracted, any shape; arrays here may carry leading batch axes):

* ``kind``: ``"elementwise"`` (``phi`` acts entry by entry; a term is ``sum_j w_j phi(u_j)``) or
  ``"reduce"`` (``phi: R^m -> R``; a term is ``w phi(u)``);
* ``sign``: +1 for a convex atom, -1 for a concave one (it must then enter with a weight <= 0);
* ``d1``, ``d2`` (smooth elementwise atoms): the first and second derivative, elementwise;
  ``grad``, ``hess`` (smooth reduce atoms): gradient ``(..., m)`` and Hessian ``(..., m, m)``;
* ``prox`` (when one is known in closed form): ``prox(v, t, M) = argmin_u t psi(u) + 1/2 ||u - v||^2``
  for ``psi = sign * phi`` (the convex version) and ``t >= 0`` (elementwise ``t`` for elementwise
  atoms, one ``t`` per leading index for reduce atoms); ``M`` is huber's parameter;
* ``pieces`` (polyhedral atoms): ``psi`` as a maximum of affine functions, for lifting a constraint
  ``psi(u) <= r`` into linear rows; elementwise: ``((slope, offset), ...)`` per entry; reduce: each
  entry's slopes (``((+1,), (-1,))``: ``max_j |u_j|``) so the rows are ``slope * u_j <= r``;
* ``domain`` (a property, read from the language's table): the open lower bound of ``u`` where
  the local solvers evaluate the atom (``log``, ``sqrt``: 0).

The proxes are the classical closed forms (Parikh and Boyd, "Proximal Algorithms", 2014, section 6):
soft thresholding, the Huber and quadratic shrinkages, block soft thresholding for ``norm2``, and
Moreau's decomposition for ``norm_inf`` (``v - proj_{||.||_1 <= t}(v)``) and ``max``
(``v - t proj_simplex(v / t)``); ``-log`` has ``(v + sqrt(v^2 + 4t)) / 2`` and ``exp`` the Lambert-W
form ``v - W(t e^v)``. ``tests/ir/test_calculus.py`` checks every prox against CVXPY.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

from catopt_dsl.check.atoms import ATOMS

__all__ = ["CALCULUS", "AtomCalculus", "polyhedral_atoms", "proj_l1_ball", "proj_simplex", "smooth_atoms"]

Array = np.ndarray


def _expit(u: Array) -> Array:
    return np.asarray(scipy.special.expit(u))


def _soft(v: Array, t: Array) -> Array:
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


def proj_simplex(v: Array) -> Array:
    """Euclidean projection of each row (last axis) of v onto the probability simplex."""
    v = np.asarray(v, dtype=np.float64)
    m = v.shape[-1]
    if m == 0:
        return v.copy()
    u = -np.sort(-v, axis=-1)
    css = np.cumsum(u, axis=-1) - 1.0
    k = np.arange(1, m + 1)
    cond = u - css / k > 0
    rho = m - 1 - np.argmax(cond[..., ::-1], axis=-1)  # last index where cond holds
    theta = np.take_along_axis(css, rho[..., None], axis=-1) / (rho[..., None] + 1.0)
    return np.maximum(v - theta, 0.0)


def proj_l1_ball(v: Array, radius: Array) -> Array:
    """Euclidean projection of each row (last axis) of v onto ``{||x||_1 <= radius}``."""
    v = np.asarray(v, dtype=np.float64)
    radius = np.asarray(radius, dtype=np.float64)
    r = radius[..., None] if radius.ndim == v.ndim - 1 else radius
    a = np.abs(v)
    inside = a.sum(axis=-1, keepdims=True) <= r
    safe = np.where(r > 0, r, 1.0)
    w = proj_simplex(a / safe) * safe
    out = np.where(inside, v, np.sign(v) * w)
    return np.where(r > 0, out, 0.0)


# -- proxes of psi = sign * phi, scaled by t ---------------------------------------------------------


def _prox_abs(v: Array, t: Array, M: float) -> Array:
    return _soft(v, t)


def _prox_pos(v: Array, t: Array, M: float) -> Array:
    return np.where(v > t, v - t, np.where(v < 0.0, v, 0.0))


def _prox_neg(v: Array, t: Array, M: float) -> Array:
    return np.where(v < -t, v + t, np.where(v > 0.0, v, 0.0))


def _prox_square(v: Array, t: Array, M: float) -> Array:
    return v / (1.0 + 2.0 * t)


def _prox_huber(v: Array, t: Array, M: float) -> Array:
    # t * huber: u^2 inside |u| <= M (shrink by 1 + 2t), 2M|u| - M^2 outside (shift by 2tM)
    inner = v / (1.0 + 2.0 * t)
    return np.where(np.abs(inner) <= M, inner, v - 2.0 * t * M * np.sign(v))


def _prox_neg_log(v: Array, t: Array, M: float) -> Array:
    return 0.5 * (v + np.sqrt(v * v + 4.0 * t))


def _prox_exp(v: Array, t: Array, M: float) -> Array:
    # u + t e^u = v  <=>  u = v - W(t e^v); for large v, use log form to avoid overflow
    t = np.broadcast_to(np.asarray(t, dtype=np.float64), np.shape(v))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        arg = t * np.exp(v)
        w = np.real(scipy.special.lambertw(arg))
        # W(y) ~ log y - log log y for huge y: Newton from there stays exact where exp overflows
        big = ~np.isfinite(arg)
        if np.any(big):
            ly = np.log(np.where(t > 0, t, 1.0)) + v
            x = np.where(big, ly - np.log(np.maximum(ly, 1.0)), w)
            for _ in range(50):
                x = x - (x + np.log(np.maximum(x, 1e-300)) - ly) / (1.0 + 1.0 / np.maximum(x, 1e-300))
            w = np.where(big, x, w)
    return np.where(t > 0, v - w, v)


def _prox_norm1(v: Array, t: Array, M: float) -> Array:
    return _soft(v, np.asarray(t)[..., None])


def _prox_sum_squares(v: Array, t: Array, M: float) -> Array:
    return v / (1.0 + 2.0 * np.asarray(t)[..., None])


def _prox_norm2(v: Array, t: Array, M: float) -> Array:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    t = np.asarray(t)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norm > t, 1.0 - t / np.where(norm > 0, norm, 1.0), 0.0)
    return v * scale


def _prox_norm_inf(v: Array, t: Array, M: float) -> Array:
    return v - proj_l1_ball(v, np.asarray(t))


def _prox_max(v: Array, t: Array, M: float) -> Array:
    t = np.asarray(t)[..., None]
    safe = np.where(t > 0, t, 1.0)
    return np.where(t > 0, v - safe * proj_simplex(v / safe), v)


def _prox_neg_min(v: Array, t: Array, M: float) -> Array:
    # -min(u) = max(-u): prox_{t max}(-v) negated
    return -_prox_max(-v, t, M)


# -- derivatives ------------------------------------------------------------------------------------


def _logistic_parts(u: Array, M: float) -> tuple[Array, Array, Array]:
    """log(1 + e^u), its first and second derivative, from one exponential (stable both ways)."""
    e = np.exp(-np.abs(u))
    value = np.maximum(u, 0.0) + np.log1p(e)
    inv = 1.0 / (1.0 + e)
    sigma = np.where(u >= 0.0, inv, e * inv)
    return value, sigma, e * inv * inv  # sigma (1 - sigma), without the cancellation


def _huber_d1(u: Array, M: float) -> Array:
    return 2.0 * np.clip(u, -M, M)


def _huber_d2(u: Array, M: float) -> Array:
    return np.where(np.abs(u) <= M, 2.0, 0.0)


def _lse_grad(u: Array, M: float) -> Array:
    z = u - np.max(u, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _lse_hess(u: Array, M: float) -> Array:
    s = _lse_grad(u, M)
    eye = np.eye(u.shape[-1])
    return s[..., :, None] * eye - s[..., :, None] * s[..., None, :]


@dataclass(frozen=True)
class AtomCalculus:
    name: str
    kind: str  # "elementwise" | "reduce"
    sign: int  # +1 convex, -1 concave
    d1: Callable[[Array, float], Array] | None = None
    d2: Callable[[Array, float], Array] | None = None
    grad: Callable[[Array, float], Array] | None = None
    hess: Callable[[Array, float], Array] | None = None
    prox: Callable[[Array, Array, float], Array] | None = None
    pieces: tuple[tuple[float, ...], ...] | None = None
    #: value, d1 and d2 in one pass (elementwise smooth atoms where that saves work)
    parts: Callable[[Array, float], tuple[Array, Array, Array]] | None = None

    @property
    def smooth(self) -> bool:
        return self.d2 is not None or self.hess is not None

    @property
    def domain(self) -> float | None:
        """The open lower bound of the argument where the local solvers may evaluate the atom
        (from the language's table, ``ATOMS[...].domain``; ``sqrt``'s derivative is infinite at 0,
        so its closed domain counts as open here), or None when it is finite everywhere."""
        return None if ATOMS[self.name].domain == "all" else 0.0


def _ew(name: str, sign: int, **kw: Any) -> AtomCalculus:
    return AtomCalculus(name, "elementwise", sign, **kw)


def _rd(name: str, sign: int, **kw: Any) -> AtomCalculus:
    return AtomCalculus(name, "reduce", sign, **kw)


#: atom -> its numeric facts (atoms absent here are affine, or handled by CVXPY only)
CALCULUS: dict[str, AtomCalculus] = {
    # smooth, elementwise
    "square": _ew("square", +1, d1=lambda u, M: 2.0 * u, d2=lambda u, M: np.full_like(u, 2.0), prox=_prox_square),
    "logistic": _ew("logistic", +1, d1=lambda u, M: _expit(u), d2=lambda u, M: _expit(u) * _expit(-u),
                    parts=_logistic_parts),
    "exp": _ew("exp", +1, d1=lambda u, M: np.exp(u), d2=lambda u, M: np.exp(u), prox=_prox_exp),
    "log": _ew("log", -1, d1=lambda u, M: 1.0 / u, d2=lambda u, M: -1.0 / (u * u), prox=_prox_neg_log),
    "sqrt": _ew("sqrt", -1, d1=lambda u, M: 0.5 / np.sqrt(u), d2=lambda u, M: -0.25 / (u * np.sqrt(u))),
    # huber is C^1 with a piecewise-constant second derivative (semismooth Newton converges on it)
    "huber": _ew("huber", +1, d1=_huber_d1, d2=_huber_d2, prox=_prox_huber),
    # smooth, reduce
    "log_sum_exp": _rd("log_sum_exp", +1, grad=_lse_grad, hess=_lse_hess),
    "sum_squares": _rd("sum_squares", +1, grad=lambda u, M: 2.0 * u,
                       hess=lambda u, M: 2.0 * np.broadcast_to(np.eye(u.shape[-1]), u.shape + (u.shape[-1],)),
                       prox=_prox_sum_squares),
    # polyhedral, elementwise: (slope, offset) pieces of psi
    "abs": _ew("abs", +1, prox=_prox_abs, pieces=((1.0, 0.0), (-1.0, 0.0))),
    "pos": _ew("pos", +1, prox=_prox_pos, pieces=((1.0, 0.0), (0.0, 0.0))),
    "neg": _ew("neg", +1, prox=_prox_neg, pieces=((-1.0, 0.0), (0.0, 0.0))),
    # reduce (norm2 is not polyhedral: prox only)
    "norm1": _rd("norm1", +1, prox=_prox_norm1),
    "norm2": _rd("norm2", +1, prox=_prox_norm2),
    "norm_inf": _rd("norm_inf", +1, prox=_prox_norm_inf, pieces=((1.0,), (-1.0,))),
    "max": _rd("max", +1, prox=_prox_max, pieces=((1.0,),)),
    "min": _rd("min", -1, prox=_prox_neg_min, pieces=((-1.0,),)),
}  # fmt: skip


def elementwise_parts(atom: str, u: Array, M: float) -> tuple[Array, Array, Array]:
    """An elementwise smooth atom's value, first and second derivative at ``u``."""
    from catopt_dsl.check.atoms import apply_atom

    calc = CALCULUS[atom]
    if calc.parts is not None:
        return calc.parts(u, M)
    assert calc.d1 is not None and calc.d2 is not None
    value = apply_atom(atom, (u,), {"M": M} if atom == "huber" else {})
    return value, calc.d1(u, M), calc.d2(u, M)


def smooth_atoms() -> frozenset[str]:
    """Atoms with exact first and second derivatives here."""
    return frozenset(k for k, v in CALCULUS.items() if v.smooth)


def polyhedral_atoms() -> frozenset[str]:
    """Atoms whose convex version is a maximum of affine pieces (constraints on them are linear)."""
    return frozenset(k for k, v in CALCULUS.items() if v.pieces is not None)
