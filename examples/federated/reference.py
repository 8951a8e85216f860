"""The centralised reference: the same model trained on the pooled data of all 4 sites.

    minimize  sum_i softmax_loss(W, b; site i) + LAMBDA/2 (||W||^2 + ||b||^2)

solved by Newton's method with the exact Hessian (18 parameters), to a gradient of 1e-10. This is
the answer the federated plan (consensus ADMM across the sites) must reproduce: its final loss
within 1e-4 relative, its per-site copies within 1e-5 of the consensus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from catopt_dsl.adapters.samples import reference_prox, softmax_grad_np, softmax_hess_np, softmax_loss_np

try:  # run as a script or imported by path
    from make_data import CLASSES, FEATURES, LAMBDA, generate
except ImportError:  # pragma: no cover - imported as examples.federated.reference
    from .make_data import CLASSES, FEATURES, LAMBDA, generate


@dataclass(frozen=True, eq=False)
class Reference:
    theta: np.ndarray  # [W row-major (5 x 3), b (3)]
    objective: float  # pooled loss + regulariser at theta
    loss: float  # pooled loss alone


def pooled(sites: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.vstack([s["X"] for s in sites]), np.concatenate([s["y"] for s in sites])


def train(sites: list[dict[str, np.ndarray]] | None = None, lam: float = LAMBDA) -> Reference:
    """Centralised training on the pooled data (exact Newton; deterministic)."""
    sites = generate() if sites is None else sites
    X, y = pooled(sites)
    n = (FEATURES + 1) * CLASSES
    # The regulariser lam/2 ||theta||^2 is the prox term with v = 0 and rho = lam.
    theta = reference_prox(
        lambda t: softmax_loss_np(t, X, y, CLASSES),
        lambda t: softmax_grad_np(t, X, y, CLASSES),
        lambda t: softmax_hess_np(t, X, y, CLASSES),
        np.zeros(n),
        lam,
        tol=1e-13,
    )
    loss = softmax_loss_np(theta, X, y, CLASSES)
    return Reference(theta, loss + 0.5 * lam * float(theta @ theta), loss)


if __name__ == "__main__":
    ref = train()
    print(f"objective {ref.objective:.10f}  loss {ref.loss:.10f}")
    print("W =", ref.theta[: FEATURES * CLASSES].reshape(FEATURES, CLASSES).round(6).tolist())
    print("b =", ref.theta[FEATURES * CLASSES :].round(6).tolist())
