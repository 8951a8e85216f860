"""A tenant's loss in JAX: the same model as ``losses_torch.softmax_loss`` (sum over rows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from catopt_dsl.adapters import external_loss


@external_loss(convex=True, params={"W": (5, 3), "b": (3,)})
def softmax_loss(params: Mapping[str, Any], data: Mapping[str, Any]) -> jax.Array:
    logits = data["X"] @ params["W"] + params["b"]
    picked = jnp.take_along_axis(logits, data["y"][:, None], axis=1)[:, 0]
    return jnp.sum(jax.nn.logsumexp(logits, axis=1) - picked)


@external_loss(convex=False, params={"W1": (5, 8), "b1": (8,), "W2": (8, 3), "b2": (3,)})
def mlp_loss(params: Mapping[str, Any], data: Mapping[str, Any]) -> jax.Array:
    hidden = jnp.tanh(data["X"] @ params["W1"] + params["b1"])
    logits = hidden @ params["W2"] + params["b2"]
    picked = jnp.take_along_axis(logits, data["y"][:, None], axis=1)[:, 0]
    return jnp.sum(jax.nn.logsumexp(logits, axis=1) - picked)
