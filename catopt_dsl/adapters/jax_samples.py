"""The conformance kit's sample problems written in JAX (see ``samples.py`` for the maths).

Each is ``loss(params, data) -> scalar`` with ``params`` and ``data`` dicts of ``jax.Array``; the
JAX adapter jit-compiles them, so they must be traceable (no Python branching on values).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from catopt_dsl.adapters.api import external_loss

__all__ = ["least_squares", "logistic", "softmax"]

Arrays = Mapping[str, Any]


@external_loss(convex=True, params={"w": (6,)})
def least_squares(params: Arrays, data: Arrays) -> jax.Array:
    r = data["A"] @ params["w"] - data["b"]
    return 0.5 * jnp.sum(r * r)


@external_loss(convex=True, params={"w": (5,)})
def logistic(params: Arrays, data: Arrays) -> jax.Array:
    margins = data["y"] * (data["X"] @ params["w"])
    return jnp.sum(jnp.logaddexp(0.0, -margins))


@external_loss(convex=True, params={"W": (4, 3), "b": (3,)})
def softmax(params: Arrays, data: Arrays) -> jax.Array:
    logits = data["X"] @ params["W"] + params["b"]
    picked = jnp.take_along_axis(logits, data["y"][:, None], axis=1)[:, 0]
    return jnp.sum(jax.nn.logsumexp(logits, axis=1) - picked)
