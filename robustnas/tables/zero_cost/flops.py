"""flops: the network's multiply-accumulates for one image, in millions (NAS-Bench-201's
"flops" field counts the same multiply-adds; NAS-Bench-Suite-Zero's ``flops`` proxy reads
it), and ``macs``, the same count unscaled (the name of ``correlate``'s first proxies files).
Counted by :func:`robustnas.space.complexity.count_macs`; data-free, a baseline.
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy


@register_proxy("macs", "(baseline)", "multiply-accumulates per image")
def macs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """MACs of ``model`` for an image of ``x``'s shape."""
    from robustnas.space.complexity import count_macs

    return float(count_macs(model, tuple(x.shape[1:])))


@register_proxy("flops", "Krishnakumar et al., NeurIPS 2022",
                "millions of multiply-accumulates per image (data-free)")
def flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """MACs in millions."""
    return macs(model, x, y, num_classes) / 1e6
