"""The conformance kit's sample problems written in torch (see ``samples.py`` for the maths).

Each is a tenant-style loss: ``loss(params, data) -> scalar tensor`` with ``params`` a dict var
name -> tensor and ``data`` a dict of tensors. They double as worked examples of writing a loss.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from catopt_dsl.adapters.api import external_loss

__all__ = ["least_squares", "logistic", "softmax"]

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
