"""A plain, hand-written batched numpy ADMM for a consensus lasso: the yardstick for catoptc.

    minimize  sum_i c ||A_i w_i - b_i||^2 + lam ||w||_1   s.t.  w_i = w

All sites in one ``einsum``, one batched inverse per rho, over-relaxation 1.6, the stopping test
catoptc uses (infinity norms: ``||x - z|| <= eps_abs + eps_rel max(||x||, ||z||)`` and
``rho ||z - z_prev|| <= eps_abs + eps_rel ||rho u||``), and residual balancing every 10
iterations that moves rho when it is off by more than 5x (the rule OSQP uses). It reads its data
straight from the ``.npy`` files; nothing here knows about specs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np


def consensus_lasso(
    A: np.ndarray,
    b: np.ndarray,
    c: float,
    lam: float,
    rho: float = 1.0,
    alpha: float = 1.6,
    eps_abs: float = 1e-5,
    eps_rel: float = 1e-5,
    max_iter: int = 10000,
) -> dict[str, Any]:
    """Solve; return ``{"w", "objective", "iterations"}``."""
    N, _, n = A.shape
    P = 2.0 * c * np.einsum("kmi,kmj->kij", A, A)
    q = -2.0 * c * np.einsum("kmi,km->ki", A, b)
    x = np.zeros((N, n))
    u = np.zeros((N, n))
    z = np.zeros(n)
    Finv = np.linalg.inv(P + rho * np.eye(n))
    k = 0
    for k in range(1, max_iter + 1):
        x = np.einsum("kij,kj->ki", Finv, rho * (z - u) - q)
        h = alpha * x + (1.0 - alpha) * z
        v = (h + u).mean(axis=0)
        z_old = z
        z = np.sign(v) * np.maximum(np.abs(v) - lam / (rho * N), 0.0)
        u = u + h - z
        r_prim = np.abs(x - z).max()
        r_dual = rho * np.abs(z - z_old).max()
        eps_prim = eps_abs + eps_rel * max(np.abs(x).max(), np.abs(z).max())
        eps_dual = eps_abs + eps_rel * rho * np.abs(u).max()
        if r_prim <= eps_prim and r_dual <= eps_dual:
            break
        if k % 10 == 0:
            ratio = (r_prim / max(eps_prim, 1e-300)) / max(r_dual / max(eps_dual, 1e-300), 1e-300)
            new = rho * np.sqrt(ratio)
            if new > 5.0 * rho or new < rho / 5.0:
                u *= rho / new
                rho = new
                Finv = np.linalg.inv(P + rho * np.eye(n))
    residual = np.einsum("kmi,i->km", A, z) - b
    objective = float(c * np.sum(residual * residual) + lam * np.abs(z).sum())
    return {"w": z, "objective": objective, "iterations": k}


def from_files(A_path: Path, b_path: Path, c: float, lam: float) -> dict[str, Any]:
    """Load the data and solve, timing both (set-up included)."""
    start = time.perf_counter()
    A = np.load(A_path)
    b = np.load(b_path)
    out = consensus_lasso(A, b, c, lam)
    out["time_s"] = time.perf_counter() - start
    return out
