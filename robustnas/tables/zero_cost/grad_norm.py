"""grad_norm (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021).

Σ_l ‖∂L/∂W_l‖₂ over the convolutions and linear layers, L the batch's mean cross-entropy,
the network in train mode (batch statistics) as in the reference implementations
(zero-cost-nas, NASLib), which sum the per-layer Frobenius norms of the weight gradients.
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.tables.zero_cost.base import cross_entropy_backward, layer_sum, register_proxy


@register_proxy("grad_norm", "Abdelfattah et al., ICLR 2021",
                "Σ of the layers' weight-gradient norms of the loss")
def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Σ_l ‖∂L/∂W_l‖ at initialisation."""
    model.train()
    cross_entropy_backward(model, x, y)
    return layer_sum(model, lambda layer: layer.weight.grad.norm())
