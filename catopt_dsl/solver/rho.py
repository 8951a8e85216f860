"""The penalty rule: a per-link secant curvature first, residual balancing where it says nothing.

Why residual balancing alone grows with the number of members
------------------------------------------------------------

Take the model consensus problem: N members, ``f_i(x) = kappa/2 ||x - c_i||^2`` (one curvature
kappa), links ``x_i == z``, no shared term, over-relaxation alpha (``coordinator.py``). Write the
error of an iterate as a *mean mode* ``e = z - z*`` and *deviation modes* ``delta_i = u_i - u_i*``
(they sum to zero after the first z-update). Substituting the x-, z- and u-updates gives, exactly,

    e+       = (1 - alpha kappa / (kappa + rho)) e
    delta_i+ = (1 - alpha rho   / (kappa + rho)) delta_i

The contraction factor ``max(|1 - alpha kappa/(kappa+rho)|, |1 - alpha rho/(kappa+rho)|)`` is a
function of ``rho / kappa`` alone: N appears nowhere, the best penalty is ``rho = kappa`` (both
factors ``1 - alpha/2``), and a fixed rho takes the same number of iterations at every N (fixed
rho = 1 with kappa = 2: 18 iterations at 20, 200 and 2,000 members).

Residual balancing (OSQP; Wohlberg 2017) compares *amplitudes*: ``r = ||a - t||`` carries both
modes, but ``s = rho ||M'(t - t_prev)||`` only the mean mode, because z moves only through the mean
of its N links, and the primal residual is measured relative to ``max(||a||, ||t||)``, i.e. to
``|z*|``. When the members' optima scatter independently around a centre, the mean of N of them
(z*, and the mean mode's amplitude) shrinks like ``N^(-1/2)`` against one member's deviation, so
the ratio the rule balances grows like ``N^(1/2)`` whatever rho is: rho was driven to 35 at 20
members and 102 at 200, where the mean mode contracts by ``1 - 2 alpha / (2 + rho) = 0.97`` per
iteration (59 and 180 iterations; 718 at 2,000). No normalisation of those two residuals by
magnitudes fixes this: magnitudes are what differ between the modes, rates are what matter.

The curvature read per link
---------------------------

Every row l of every object gives, after its x-update, the unscaled multiplier estimate

    yhat_l = rho (a_l - t_l + u_l)           (t, u: the values the x-update was solved for)

and the x-update's optimality condition says ``-M_i' yhat_i`` is a subgradient of ``f_i`` at
``x_i``: ``-yhat_i`` is a subgradient of phi_i, the partial minimum of f_i over x with its rows
fixed, at ``a_i``. In the model problem ``yhat = -kappa (a - c)``, so between two iterations
``delta yhat = -kappa delta a`` on every link, in every mode. Hence the secant (Barzilai-Borwein)
curvature, the spectral estimate of Xu, Figueiredo and Goldstein (AISTATS 2017) for adaptive
ADMM, taken over all rows:

    kappa_hat = ||delta yhat||_2 / ||delta a||_2 = sqrt(sum_links ||delta yhat_l||^2 / sum_links ||delta a_l||^2)

is a ratio of two sums of per-link terms: each member adds its own term to both, so kappa_hat is
a weighted mean of the members' curvatures along their own motion and does not depend on how
many members there are. For any convex f_i, phi_i's subgradient is monotone, so
``<-delta yhat, delta a> >= 0``: kappa_hat is a curvature, never a sign error.

The rule
--------

At each adaptation checkpoint (iterations 1, 2, 4, 8, ... below the interval, then every
interval iterations; a warm start, whose rho its previous solve adapted, skips the early ones):

1. If the secant since the previous iteration is usable -- ``||delta a||`` and ``||delta yhat||``
   above rounding (``SECANT_FLOOR`` relative to ``||a||`` and ``||yhat||``), the correlation
   ``<-delta yhat, delta a> / (||delta yhat|| ||delta a||)`` at least ``MIN_CORRELATION`` (the
   safeguard of the spectral rule: the curvature was seen consistently, not noise), and kappa_hat
   inside ``[RHO_MIN, RHO_MAX]`` -- then rho moves to kappa_hat when it lies outside
   ``[kappa_hat / CURVATURE_BAND, CURVATURE_BAND * kappa_hat]``, and stays otherwise. In the
   model problem the worst contraction inside the band is ``max(|1 - alpha/3|, |1 - 2 alpha/3|)``
   (0.47 at alpha = 1.6), for any N.
2. Otherwise residual balancing decides, as before (:func:`balance_residuals`). That covers the
   first checkpoint (no secant yet) and every case where the secant says nothing: a linear
   objective (``delta yhat = 0``), an unbounded run (x runs off, ``delta yhat -> 0``), an
   infeasible one (x settles while the multipliers grow, ``delta a -> 0``), nonsmooth kinks.

Measured (default options, tolerance 1e-5): the consensus family above takes 10, 10 and 10
iterations at 20, 200 and 2,000 members; the benchmark lasso 19, 16 and 15 at 8, 64 and 512 sites.

Every runtime applies this rule (the in-process loop and the delta-sync coordinators through
:class:`~catopt_dsl.solver.coordinator.Coordinator`; the generated Rust and C++ coordinators
reimplement it line by line), so a plan gets the same rho sequence everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CURVATURE_BAND",
    "MIN_CORRELATION",
    "RHO_MAX",
    "RHO_MIN",
    "RHO_MOVE",
    "SECANT_FLOOR",
    "Secant",
    "adapt_now",
    "balance_residuals",
    "multiplier_estimate",
    "next_rho",
    "secant_curvature",
]

RHO_MIN, RHO_MAX = 1e-6, 1e6
#: residual balancing changes rho only when its suggestion differs by more than this factor
#: (OSQP's ``adaptive_rho_tolerance``): each change costs the fast path a refactorisation
RHO_MOVE = 5.0
#: the curvature rule leaves rho alone while it is within this factor of kappa_hat
CURVATURE_BAND = 1.9
#: the spectral rule's correlation safeguard
MIN_CORRELATION = 0.2
#: secants smaller than this, relative to the vectors they are differences of, are rounding
SECANT_FLOOR = 1e-9
_TINY = 1e-12


def adapt_now(k: int, interval: int, warm: bool = False) -> bool:
    """Adaptation checkpoints: iterations 1, 2, 4, 8, ... below ``interval``, then every ``interval``.

    A badly chosen initial rho is the common case (users pass 0.01 or 100 for plans of any scale);
    checking early corrects it within a few iterations instead of one factor per ``interval``. A
    warm start (``warm``) brings the rho its previous solve adapted to: only the regular
    checkpoints apply, so the first iterations after a plan change keep it.
    """
    if interval <= 0:
        return False
    if k % interval == 0:
        return True
    return not warm and k < interval and (k & (k - 1)) == 0


def balance_residuals(
    rho: float, prim_norm: float, r_dual: float, dual_scale: float, grad_scale: float, early: bool
) -> float:
    """``rho * sqrt(normalised primal / normalised dual residual)``, clipped to [RHO_MIN, RHO_MAX].

    The dual residual is normalised by ``||rho M'u||``, which is itself proportional to rho while
    the scaled duals are still growing: from a tiny initial rho it stays tiny, the ratio looks
    balanced and rho never rises. So an increase is judged against the larger of that and the
    local objectives' own scale ``max(||Px||, ||q||)`` (OSQP's dual normalisation terms, sent by
    workers with quadratic objectives). A decrease is judged against ``||rho M'u||`` alone, and
    only from the first regular checkpoint on (``early`` is False): in the first iterations u is
    still near zero, so that scale would call for a collapse of any rho.
    """

    def suggest(scale: float) -> float:
        ratio = prim_norm / max(r_dual / max(scale, _TINY), _TINY)
        return float(np.clip(rho * np.sqrt(max(ratio, 0.0)), RHO_MIN, RHO_MAX))

    up = suggest(max(dual_scale, grad_scale))
    if up > RHO_MOVE * rho or early:
        return max(up, rho) if early else up
    return suggest(dual_scale)


def multiplier_estimate(rho: float, a: np.ndarray, t: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``yhat = rho (a - t + u)``: minus the row gradient of the objectives at the new x (see the
    module docstring); ``t`` and ``u`` are the values the x-update was solved for."""
    return rho * (a - t + u)


@dataclass(frozen=True)
class Secant:
    """One secant pair: the rows ``a`` and the multiplier estimate ``yhat`` of one iteration."""

    a: np.ndarray
    yhat: np.ndarray


def _norm(v: np.ndarray) -> float:
    # elementwise, not BLAS: a multithreaded BLAS dot on a shared machine can cost milliseconds
    return float(np.sqrt(np.sum(v * v)))


def secant_curvature(before: Secant, after: Secant) -> float | None:
    """kappa_hat from two consecutive iterations, or None when the secant is not usable."""
    da = after.a - before.a
    dy = after.yhat - before.yhat
    nda = _norm(da)
    ndy = _norm(dy)
    if nda <= SECANT_FLOOR * max(_norm(after.a), 1.0):
        return None
    if ndy <= SECANT_FLOOR * max(_norm(after.yhat), 1.0):
        return None
    if not (np.isfinite(nda) and np.isfinite(ndy)):
        return None
    if -float(np.sum(dy * da)) < MIN_CORRELATION * nda * ndy:
        return None
    kappa = ndy / nda
    if not RHO_MIN <= kappa <= RHO_MAX:
        return None
    return kappa


def next_rho(
    rho: float,
    kappa: float | None,
    prim_norm: float,
    r_dual: float,
    dual_scale: float,
    grad_scale: float,
    early: bool,
) -> float:
    """The rho for the next iteration (equal to ``rho`` when it stays; see the module docstring)."""
    if kappa is not None:
        inside = kappa / CURVATURE_BAND <= rho <= kappa * CURVATURE_BAND
        return rho if inside else kappa
    suggestion = balance_residuals(rho, prim_norm, r_dual, dual_scale, grad_scale, early)
    if suggestion > RHO_MOVE * rho or suggestion < rho / RHO_MOVE:
        return suggestion
    return rho
