"""A tenant's loss in torch: multinomial logistic regression on the tenant's own data (sum over rows).

Referenced from a spec as ``losses_torch:softmax_loss`` with data ``data/site_<i>.npz``; the vars are
``W: float[5, 3]`` and ``b: float[3]``, flattened W row-major then b.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from catopt_dsl.adapters import external_loss


@external_loss(convex=True, params={"W": (5, 3), "b": (3,)})
def softmax_loss(params: Mapping[str, torch.Tensor], data: Mapping[str, torch.Tensor]) -> torch.Tensor:
    logits = data["X"] @ params["W"] + params["b"]
    return torch.nn.functional.cross_entropy(logits, data["y"], reduction="sum")


@external_loss(convex=False, params={"W1": (5, 8), "b1": (8,), "W2": (8, 3), "b2": (3,)})
def mlp_loss(params: Mapping[str, torch.Tensor], data: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A small non-convex model (one tanh hidden layer of 8): ADMM on it is a heuristic."""
    hidden = torch.tanh(data["X"] @ params["W1"] + params["b1"])
    logits = hidden @ params["W2"] + params["b2"]
    return torch.nn.functional.cross_entropy(logits, data["y"], reduction="sum")
