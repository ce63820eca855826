"""lipschitz_log10: log10 of the certified L2 Lipschitz upper bound of the logits
(the product of the layers' bounds, :mod:`robustnas.evaluation.lipschitz`; Szegedy et al.,
ICLR 2014; a robustness proxy in Jung et al., ICLR 2023). Data-free apart from the input
shape; eval mode (batch norm with its running statistics is a fixed affine map).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy


@register_proxy("lipschitz_log10", "Jung et al., ICLR 2023",
                "log10 certified Lipschitz bound of the logits")
def lipschitz_log10(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    num_classes: int) -> float:
    """log10 of the Lipschitz upper bound (−inf for a bound of 0)."""
    from robustnas.evaluation.lipschitz import lipschitz_upper_bound

    bound = lipschitz_upper_bound(model.eval(), tuple(x.shape[1:]))
    return math.log10(bound) if bound > 0 else float("-inf")
