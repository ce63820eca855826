"""hessian_top_eigenvalue: the mean over the batch of the largest eigenvalue of the input
Hessian ∇²ₓ CE(f(x), y) (Zhao et al., "Adversarial robustness and curvature", the curvature
proxy of Jung et al., ICLR 2023), by power iteration with ``hessian_iters`` steps from a
start vector drawn with ``seed`` (:func:`robustnas.evaluation.measures.hessian_top_eigenvalue`).
Eval mode.
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy


@register_proxy("hessian_top_eigenvalue", "Jung et al., ICLR 2023",
                "input-Hessian top eigenvalue (loss curvature)",
                options=("hessian_iters", "seed"))
def hessian_top_eigenvalue(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           num_classes: int, hessian_iters: int = 10, seed: int = 0) -> float:
    """Mean top input-Hessian eigenvalue at initialisation."""
    from robustnas.evaluation.measures import hessian_top_eigenvalue as per_sample

    gen = torch.Generator().manual_seed(seed)
    return float(per_sample(model.eval(), x, y, iters=hessian_iters, generator=gen).mean())
