"""The search's optimisers: SGD with a cosine schedule for the weights, Adam for α (DARTS)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustnas.search.config import SearchConfig


def build_optimizers(config: SearchConfig, model: nn.Module) -> tuple[Any, Any, Any]:
    """``(weight optimiser, its schedule, α optimiser)`` of ``model``'s supernet."""
    w_optimizer = torch.optim.SGD(model.weights(), lr=config.w_lr, momentum=config.w_momentum,
                                  weight_decay=config.w_weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        w_optimizer, T_max=config.epochs, eta_min=config.w_lr_min)
    arch_optimizer = torch.optim.Adam(
        model.arch_parameters(), lr=config.arch_lr,
        betas=(config.arch_beta1, config.arch_beta2), weight_decay=config.arch_weight_decay)
    return w_optimizer, scheduler, arch_optimizer
