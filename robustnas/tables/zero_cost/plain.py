"""plain (Mozer & Smolensky, "Skeletonization", NeurIPS 1988; the baseline of Abdelfattah et
al., ICLR 2021): Σ_l Σ W_l ⊙ ∂L/∂W_l, the first-order change of the loss when the weights
are removed, without snip's absolute value. Train mode, mean cross-entropy.
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.tables.zero_cost.base import cross_entropy_backward, layer_sum, register_proxy


@register_proxy("plain", "Mozer & Smolensky, NeurIPS 1988",
                "Σ W ⊙ ∂L/∂W (signed saliency)")
def plain(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Σ W ⊙ ∂L/∂W at initialisation."""
    model.train()
    cross_entropy_backward(model, x, y)
    return layer_sum(model, lambda layer: layer.weight * layer.weight.grad)
