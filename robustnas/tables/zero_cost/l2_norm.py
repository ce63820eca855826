"""l2_norm (NAS-Bench-Suite-Zero, Krishnakumar et al., NeurIPS 2022 Datasets & Benchmarks):
Σ_l ‖W_l‖₂ over the convolutions and linear layers; data-free (a baseline that measures
only the initialiser and the layers' shapes).
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.tables.zero_cost.base import layer_sum, register_proxy


@register_proxy("l2_norm", "Krishnakumar et al., NeurIPS 2022",
                "Σ of the layers' weight norms (data-free)")
def l2_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Σ_l ‖W_l‖ at initialisation."""
    with torch.no_grad():
        return layer_sum(model, lambda layer: layer.weight.norm(), needs_grad=False)
