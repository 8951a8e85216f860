"""The conformance kit's sample problems, with independent numpy references.

Each :class:`Sample` is a small convex loss with fixed data (a fixed seed, so every run and every
adapter sees the same numbers), a :class:`ParamLayout`, and a numpy implementation of the loss, its
gradient and its Hessian. A framework adapter publishes its own implementation of each sample (the
contract's ``samples``); the kit compares the two.

The reference prox point is computed by :func:`reference_prox`: Newton's method with the exact
Hessian and a backtracking line search on ``F = loss + rho/2 ||theta - v||^2`` (rho-strongly
convex, so Newton converges quadratically to machine precision) -- an algorithm no adapter under
test uses, so a shared bug cannot hide.

Samples (all reduce by ``sum`` over the data, not ``mean``):

* ``least_squares``: ``w: float[6]``; ``0.5 ||A w - b||^2`` with ``A`` 20 x 6, ``b`` 20.
* ``logistic``: ``w: float[5]``; ``sum log(1 + exp(-y .* (X w)))``, ``X`` 30 x 5, ``y`` in {-1, +1}.
* ``softmax``: ``W: float[4, 3], b: float[3]``; multinomial logistic regression,
  ``sum_i logsumexp(X_i W + b) - (X_i W + b)[y_i]``, ``X`` 40 x 4, integer labels ``y`` in {0, 1, 2}.
  Two vars, one of them a matrix: it pins down the flattening order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from catopt_dsl.adapters.api import ParamLayout

__all__ = ["SAMPLES", "Sample", "reference_prox", "sample", "softmax_grad_np", "softmax_hess_np", "softmax_loss_np"]

SEED = 20261115


@dataclass(frozen=True, eq=False)
class Sample:
    name: str
    layout: ParamLayout
    data: Mapping[str, np.ndarray]
    loss: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    hess: Callable[[np.ndarray], np.ndarray]


def _lse_rows(Z: np.ndarray) -> np.ndarray:
    m = Z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True)))[:, 0]


def _augment(X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((X.shape[0], 1))])


def softmax_loss_np(theta: np.ndarray, X: np.ndarray, y: np.ndarray, k: int) -> float:
    """Multinomial logistic loss of flat ``theta`` = [W row-major (d x k), b (k)] (sum over rows)."""
    Wa = np.asarray(theta, dtype=np.float64).reshape(X.shape[1] + 1, k)
    Z = _augment(X) @ Wa
    return float(np.sum(_lse_rows(Z) - Z[np.arange(len(y)), y]))


def softmax_grad_np(theta: np.ndarray, X: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    Wa = np.asarray(theta, dtype=np.float64).reshape(X.shape[1] + 1, k)
    Xa = _augment(X)
    Z = Xa @ Wa
    P = np.exp(Z - _lse_rows(Z)[:, None])
    P[np.arange(len(y)), y] -= 1.0
    return (Xa.T @ P).reshape(-1)


def softmax_hess_np(theta: np.ndarray, X: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    # With [W; b] stacked as Wa ((d+1) x k), flat index j*k + c is exactly the layout's order, and
    # H[(j,c),(l,e)] = sum_i Xa[i,j] Xa[i,l] (diag(p_i) - p_i p_i')[c,e].
    Wa = np.asarray(theta, dtype=np.float64).reshape(X.shape[1] + 1, k)
    Xa = _augment(X)
    Z = Xa @ Wa
    P = np.exp(Z - _lse_rows(Z)[:, None])
    S = np.einsum("ic,ce->ice", P, np.eye(k)) - np.einsum("ic,ie->ice", P, P)
    H = np.einsum("ij,il,ice->jcle", Xa, Xa, S)
    n = Wa.size
    return H.reshape(n, n)


def _least_squares() -> Sample:
    rng = np.random.default_rng(SEED)
    A = rng.standard_normal((20, 6))
    b = A @ rng.standard_normal(6) + 0.1 * rng.standard_normal(20)
    return Sample(
        "least_squares",
        ParamLayout.of(("w", (6,))),
        {"A": A, "b": b},
        lambda t: float(0.5 * np.sum((A @ t - b) ** 2)),
        lambda t: A.T @ (A @ t - b),
        lambda t: A.T @ A,
    )


def _logistic() -> Sample:
    rng = np.random.default_rng(SEED + 1)
    X = rng.standard_normal((30, 5))
    y = np.where(X @ rng.standard_normal(5) + 0.5 * rng.standard_normal(30) > 0, 1.0, -1.0)

    def loss(t: np.ndarray) -> float:
        return float(np.sum(np.logaddexp(0.0, -y * (X @ t))))

    def grad(t: np.ndarray) -> np.ndarray:
        s = 1.0 / (1.0 + np.exp(y * (X @ t)))  # sigmoid(-y x'w)
        return -X.T @ (y * s)

    def hess(t: np.ndarray) -> np.ndarray:
        s = 1.0 / (1.0 + np.exp(y * (X @ t)))
        return X.T @ (X * (s * (1 - s))[:, None])

    return Sample("logistic", ParamLayout.of(("w", (5,))), {"X": X, "y": y}, loss, grad, hess)


def _softmax() -> Sample:
    rng = np.random.default_rng(SEED + 2)
    d, k, m = 4, 3, 40
    X = rng.standard_normal((m, d))
    Z = X @ rng.standard_normal((d, k)) + 0.3 * rng.standard_normal((m, k))
    y = np.argmax(Z, axis=1).astype(np.int64)
    return Sample(
        "softmax",
        ParamLayout.of(("W", (d, k)), ("b", (k,))),
        {"X": X, "y": y},
        lambda t: softmax_loss_np(t, X, y, k),
        lambda t: softmax_grad_np(t, X, y, k),
        lambda t: softmax_hess_np(t, X, y, k),
    )


SAMPLES: dict[str, Callable[[], Sample]] = {
    "least_squares": _least_squares,
    "logistic": _logistic,
    "softmax": _softmax,
}


def sample(name: str) -> Sample:
    """The sample problem ``name`` (data regenerated from its fixed seed)."""
    return SAMPLES[name]()


def reference_prox(
    loss: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    hess: Callable[[np.ndarray], np.ndarray],
    v: np.ndarray,
    rho: float,
    x0: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> np.ndarray:
    """argmin loss(x) + rho/2 ||x - v||^2 by damped Newton with the exact Hessian (convex loss)."""
    v = np.asarray(v, dtype=np.float64)
    x = v.copy() if x0 is None else np.asarray(x0, dtype=np.float64).copy()

    def F(z: np.ndarray) -> float:
        return loss(z) + 0.5 * rho * float(np.sum((z - v) ** 2))

    def G(z: np.ndarray) -> np.ndarray:
        return grad(z) + rho * (z - v)

    g = G(x)
    for _ in range(max_iter):
        gnorm = float(np.abs(g).max(initial=0.0))
        if gnorm <= tol * max(1.0, float(np.abs(rho * (x - v)).max(initial=0.0))):
            return x
        step = np.linalg.solve(hess(x) + rho * np.eye(x.size), -g)
        # Armijo on F far from the answer; near it F's changes fall below float64's resolution, so
        # a step that shrinks the gradient is accepted too (Newton's local quadratic convergence).
        t, fx, slope = 1.0, F(x), float(g @ step)
        while t > 1e-12:
            trial = x + t * step
            g_trial = G(trial)
            if F(trial) <= fx + 1e-4 * t * slope or np.abs(g_trial).max() < 0.5 * gnorm:
                break
            t *= 0.5
        else:
            break  # no progress possible in float64
        x, g = trial, g_trial
    gnorm = float(np.abs(g).max(initial=0.0))
    if gnorm <= 1e-8 * max(1.0, float(np.abs(rho * (x - v)).max(initial=0.0))):
        return x
    raise RuntimeError(f"reference Newton stopped at ||grad||_inf = {gnorm:.2e}")
