"""What every framework adapter does before touching its framework: resolve and vet the loss.

Kept apart from ``api.py`` (the interface) so adapters share one implementation of the rules:
the reference must resolve, a loss that states its parameter shapes must match the spec's vars,
and the convexity sentence names who vouched for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catopt_dsl.adapters.api import (
    AdapterError,
    Contract,
    ParamLayout,
    Quantity,
    check_declared_params,
    declared_convex,
    resolve_callable,
)

__all__ = ["FRAMEWORK_QUANTITIES", "ResolvedLoss", "newton_polish", "resolve_loss"]

#: What a framework adapter provides, in canonical units (``units.py``).
FRAMEWORK_QUANTITIES = (
    Quantity("params", "float64"),
    Quantity("loss", "1"),
    Quantity("gradient", "float64"),
    Quantity("hvp", "float64"),
)


@dataclass(frozen=True)
class ResolvedLoss:
    fn: Callable[..., Any]
    reference: str
    convex: bool
    convexity: str


def resolve_loss(
    contract: Contract, loss: str | Callable[..., Any], layout: ParamLayout, search_path: Sequence[Path] = ()
) -> ResolvedLoss:
    """Resolve ``loss`` (a ``module:function`` or the function) and decide what to say about convexity."""
    if layout.n == 0:
        raise AdapterError("a framework loss needs at least one parameter (the spec declares no var)")
    if isinstance(loss, str):
        fn, ref = resolve_callable(loss, search_path), loss
    elif callable(loss):
        fn, ref = loss, f"{getattr(loss, '__module__', '?')}:{getattr(loss, '__qualname__', repr(loss))}"
    else:
        raise AdapterError(f"a loss must be a `module:function` string or a function, not {type(loss).__name__}")
    check_declared_params(fn, layout, ref)
    name = contract.name
    if contract.convexity == "always":
        convex, text = True, f"declared convex by adapter {name} (it promises convexity for every loss it serves)"
    elif contract.convexity == "declared" and declared_convex(fn):
        convex, text = True, f"declared convex by adapter {name} (loss `{ref}` is marked convex)"
    else:
        convex = False
        text = (
            f"not known to be convex: adapter {name} makes no promise for loss `{ref}`; "
            "ADMM is then a heuristic (no optimality guarantee)"
        )
    return ResolvedLoss(fn, ref, convex, text)


def newton_polish(
    x: np.ndarray,
    grad_f: Callable[[np.ndarray], np.ndarray],
    hvp_f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    done: Callable[[np.ndarray, float], bool],
    max_steps: int = 8,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Finish a prox step with Newton-CG steps judged by the gradient alone.

    A line search compares objective values, and near the answer those differ by less than
    float64 resolves (a prox objective of 1e3 has an ulp of 1e-13; a gradient of 1e-7 changes it by
    1e-16), so a quasi-Newton method stalls at gradients of 1e-7..1e-8. Newton steps solved by CG on
    Hessian-vector products converge quadratically there and need no objective values: a step is
    kept only when it shrinks the gradient. Returns ``(x, grad at x, steps taken)``.
    """
    from scipy.sparse.linalg import LinearOperator, cg

    g = grad_f(x)
    steps = 0
    for _ in range(max_steps):
        gnorm = float(np.abs(g).max(initial=0.0))
        if done(x, gnorm) or not np.isfinite(gnorm):
            break
        n = x.size
        op = LinearOperator((n, n), matvec=lambda u, x=x: hvp_f(x, np.asarray(u, dtype=np.float64).reshape(-1)), dtype=np.float64)
        d, _info = cg(op, -g, rtol=min(0.1, float(np.sqrt(gnorm))), maxiter=max(20, 2 * n))
        trial = x + d
        g_trial = grad_f(trial)
        if not np.abs(g_trial).max(initial=0.0) < gnorm:
            break
        x, g = trial, g_trial
        steps += 1
    return x, g, steps
