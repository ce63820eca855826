"""fisher (Theis et al., "Faster gaze prediction with dense networks and Fisher pruning",
2018; Turner et al., "BlockSwap", ICLR 2020; as a NAS proxy Abdelfattah et al., ICLR 2021).

Σ over the outputs a (channels) of every convolution and linear layer of
½ · mean_n (Σ_{h,w} a_{n,c,h,w} · ∂L/∂a_{n,c,h,w})²: the Fisher-information estimate of the
loss change when the channel is removed. The references insert an identity after each layer
to catch its activation and gradient; we catch them with a forward hook and
``retain_grad``. L is the batch's *mean* cross-entropy, as in the references (a sum would
scale the score by N²). Train mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy, weight_layers


@register_proxy("fisher", "Turner et al., ICLR 2020",
                "Fisher information of the layers' output channels")
def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Σ_channels ½ mean_n (Σ_hw a ⊙ ∂L/∂a)² at initialisation."""
    model.train()
    acts: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        if out.requires_grad:
            out.retain_grad()
            acts.append(out)

    handles = [layer.register_forward_hook(keep) for layer in weight_layers(model)]
    try:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
    finally:
        for handle in handles:
            handle.remove()
    total = 0.0
    for act in acts:  # a layer called twice (shared) counts once per call, as its hooks do
        if act.grad is None:
            continue
        prod = act.detach() * act.grad
        per_channel = prod.sum(dim=(2, 3)) if prod.dim() == 4 else prod
        total += float(0.5 * per_channel.pow(2).mean(0).sum())
    return total
