"""synflow (Tanaka et al., "Pruning neural networks without any data by iteratively
conserving synaptic flow", NeurIPS 2020; as a NAS proxy Abdelfattah et al., ICLR 2021).

With every parameter and buffer replaced by its absolute value and the network in float64,
R = Σ_k f_k(1), the summed output for an all-ones input of one image, and the score is
Σ_l Σ |W_l ⊙ ∂R/∂W_l| over the convolutions and linear layers. Data-free.

Float64 matters: the products of many |W| overflow or lose the small layers' share in
float32. Batch norm: zero-cost-nas and NASLib's ``synflow`` build a copy of the network
without batch norm; our networks cannot drop theirs, so they run in eval mode, where a batch
norm at initialisation (running mean 0, variance 1, γ = 1, β = 0) is the identity up to its
1/√(1 + ε) (NASLib's ``synflow_bn`` keeps batch norm in train mode instead). The input
normalisation layer's mean and std are made absolute with the other buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.tables.zero_cost.base import layer_sum, register_proxy


@register_proxy("synflow", "Tanaka et al., NeurIPS 2020",
                "synaptic flow Σ|W ⊙ ∂R/∂W| of the |W| network (data-free)")
def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Σ |W ⊙ ∂R/∂W| of the linearised float64 network."""
    model.double().eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.abs_()
    model.zero_grad()
    model(torch.ones((1, *x.shape[1:]), dtype=torch.float64)).sum().backward()
    return layer_sum(model, lambda layer: (layer.weight * layer.weight.grad).abs())
