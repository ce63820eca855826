"""zen (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV
2021).

With the convolutions' and linear layers' weights drawn from N(0, 1) (biases 0, batch norm
γ = 1, β = 0: Zen-NAS's Gaussian initialisation), Gaussian inputs z, ε of the batch's shape
and the pre-pooling feature map F (the input of the network's last global average pooling),
the score is log E_n ‖F(z) − F(z + 0.01 ε)‖₁ + Σ_BN log √(mean running variance), the
network in train mode (batch statistics; each of the two forward passes updates the running
variances with the layer's momentum, as in Zen-NAS's code). The batch's images and labels
are not used, only its shape.

Where the references differ: Zen-NAS calls its models' ``forward_pre_GAP``; we hook the
input of the last ``nn.AdaptiveAvgPool2d`` (a network without one uses its logits, summed
over dimension 1). NASLib's port calls the whole ``forward`` and sums over dimensions
1..3 (it would fail on logits) and skips the Gaussian re-initialisation. A batch norm
without running statistics adds nothing to the sum.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy

MIXUP_GAMMA = 1e-2


def gaussian_init(model: nn.Module) -> None:
    """Zen-NAS's initialisation: N(0, 1) weights, zero biases, unit batch norm."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def pre_pool_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of the last global average pooling called (else the logits)."""
    seen: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
               for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen[-1] if seen else out


@register_proxy("zen", "Lin et al., ICCV 2021",
                "log expected feature change under input perturbation + BN scaling")
def zen(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """The Zen score at (Gaussian) initialisation."""
    gaussian_init(model)
    model.train()
    with torch.no_grad():
        z = torch.randn(x.shape, dtype=x.dtype)
        mixed = z + MIXUP_GAMMA * torch.randn(x.shape, dtype=x.dtype)
        diff = pre_pool_features(model, z) - pre_pool_features(model, mixed)
        score = float(diff.abs().reshape(len(x), -1).sum(1).mean())
        log_bn = sum(math.log(math.sqrt(float(m.running_var.mean())))
                     for m in model.modules()
                     if isinstance(m, nn.BatchNorm2d) and m.running_var is not None)
    return (math.log(score) if score > 0 else float("-inf")) + log_bn
