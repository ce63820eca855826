"""grasp (Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient
Flow", ICLR 2020; as a NAS proxy Abdelfattah et al., ICLR 2021).

Σ_l Σ −W_l ⊙ (H g)_l, g = ∂L/∂W and H the Hessian of the loss in the weights of the
convolutions and linear layers (H g through a second backward pass of gᵀ·∂L/∂W with g held
constant). The sign follows zero-cost-nas and NASLib (GraSP's own code prunes the smallest
values of +W ⊙ Hg; the NAS references negate it). Train mode, temperature 1, one pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy, weight_layers


@register_proxy("grasp", "Wang et al., ICLR 2020",
                "gradient-flow preservation Σ −W ⊙ Hg")
def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Σ −W ⊙ H g at initialisation."""
    model.train()
    weights = [layer.weight for layer in weight_layers(model)]
    g = torch.autograd.grad(F.cross_entropy(model(x), y), weights, allow_unused=True)
    g_graph = torch.autograd.grad(F.cross_entropy(model(x), y), weights, create_graph=True,
                                  allow_unused=True)
    z = sum((a.detach() * b).sum() for a, b in zip(g, g_graph) if a is not None)
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    return float(sum((-w.detach() * h).sum() for w, h in zip(weights, hg) if h is not None))
