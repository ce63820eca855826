"""The search's supernet (with its relaxation) and optimisers: SGD with a cosine schedule for
the weights, Adam for α (DARTS)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustnas.search.config import SearchConfig


def build_supernet(config: SearchConfig, data: Any) -> nn.Module:
    """The space's supernet for the search's data, with the configured relaxation
    (``config.relaxation``; the default ``darts`` is the space's plain mixture, so a space
    whose supernet takes no relaxation is built as it always was)."""
    from robustnas.errors import UsageError
    from robustnas.space.relaxations import DEFAULT_RELAXATION, make_relaxation
    from robustnas.space.spaces import get_space

    relaxation = make_relaxation(config.relaxation, config.relaxation_options)
    extra = {} if relaxation.name == DEFAULT_RELAXATION else {"relaxation": relaxation}
    try:
        return get_space(config.space).supernet(
            C=config.C, num_classes=data.num_classes, layers=config.layers,
            steps=config.steps, in_channels=data.in_channels, mean=data.mean, std=data.std,
            **extra)
    except TypeError as exc:
        if extra and "relaxation" in str(exc):
            raise UsageError(f"relaxation {config.relaxation}: the supernet of space "
                             f"{config.space} offers no relaxation but {DEFAULT_RELAXATION}"
                             ) from None
        raise


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
