"""params: the number of trainable parameters (NAS-Bench-Suite-Zero reports millions; the
count here is unscaled, as in ``correlate``'s first proxies files; ranks are the same).
Counted by :func:`robustnas.space.complexity.count_parameters`; data-free, a baseline.
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy


@register_proxy("params", "Krishnakumar et al., NeurIPS 2022", "parameter count (data-free)")
def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """The parameter count of ``model``."""
    from robustnas.space.complexity import count_parameters

    return float(count_parameters(model))
