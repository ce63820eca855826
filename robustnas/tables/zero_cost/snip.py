"""snip (Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity",
ICLR 2019; as a NAS proxy Abdelfattah et al., ICLR 2021).

Σ_l Σ |∂L/∂c ⊙ ...| = Σ_l Σ |W_l ⊙ ∂L/∂W_l|: the references multiply every weight by a mask
c = 1 and take |∂L/∂c|, which equals |W ⊙ ∂L/∂W| because ∂L/∂c = W ⊙ ∂L/∂(cW) at c = 1;
we take the latter directly. Train mode, mean cross-entropy, convolutions and linear layers.
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.tables.zero_cost.base import cross_entropy_backward, layer_sum, register_proxy


@register_proxy("snip", "Lee et al., ICLR 2019",
                "connection sensitivity Σ|W ⊙ ∂L/∂W|")
def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Σ |W ⊙ ∂L/∂W| at initialisation."""
    model.train()
    cross_entropy_backward(model, x, y)
    return layer_sum(model, lambda layer: (layer.weight * layer.weight.grad).abs())
