"""The conformance kit's sample problems written in torch (see ``samples.py`` for the maths).

Each is a tenant-style loss: ``loss(params, data) -> scalar tensor`` with ``params`` a dict var
name -> tensor and ``data`` a dict of tensors. They double as worked examples of writing a loss.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from catopt_dsl.adapters.api import external_loss

__all__ = ["double_well", "least_squares", "logistic", "softmax"]

Tensors = Mapping[str, torch.Tensor]


@external_loss(convex=True, params={"w": (6,)})
def least_squares(params: Tensors, data: Tensors) -> torch.Tensor:
    r = data["A"] @ params["w"] - data["b"]
    return 0.5 * (r * r).sum()


@external_loss(convex=True, params={"w": (5,)})
def logistic(params: Tensors, data: Tensors) -> torch.Tensor:
    margins = data["y"] * (data["X"] @ params["w"])
    return torch.nn.functional.softplus(-margins).sum()


@external_loss(convex=True, params={"W": (4, 3), "b": (3,)})
def softmax(params: Tensors, data: Tensors) -> torch.Tensor:
    logits = data["X"] @ params["W"] + params["b"]
    return torch.nn.functional.cross_entropy(logits, data["y"], reduction="sum")


@external_loss(convex=False, params={"w": (2,)})
def double_well(params: Tensors, data: Tensors) -> torch.Tensor:
    """sum((w_i^2 - 1)^2): non-convex, minima at w_i = +-1, a stationary point (a local maximum)
    at 0. Not a kit sample: docs/statuses.md uses it to show the `stationary` status."""
    w = params["w"]
    return ((w * w - 1.0) ** 2).sum()
