"""The search's optimisers: SGD with a cosine schedule for the weights, Adam for α (DARTS),
and, first, the supernet's relaxation (:func:`install_relaxation`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustnas.search.config import SearchConfig


def install_relaxation(config: SearchConfig, model: nn.Module) -> None:
    """Give the search's supernet the configured relaxation (``config.relaxation``).

    The loop builds the supernet with the space's default relaxation; this is the first
    point of the set-up that sees both the settings and the supernet, and it must come
    before the optimisers: PC-DARTS adds architecture parameters (β) and rebuilds the edges
    (new weights). The default ``darts`` changes nothing (a search stays bit-identical).
    Rebuilt edges are placed as the rest of the supernet was: on its device, in
    channels_last when asked, and, under torchrun with global batch norm, with their batch
    norms converted and rank 0's values everywhere (:mod:`robustnas.search.parallel`).
    """
    from robustnas import distributed as D
    from robustnas.errors import UsageError
    from robustnas.space.relaxations import DEFAULT_RELAXATION, make_relaxation

    model = getattr(model, "module", model)
    if not callable(getattr(model, "set_relaxation", None)):
        # A space's own supernet without relaxations is DARTS' mixture.
        if make_relaxation(config.relaxation, config.relaxation_options).name \
                != DEFAULT_RELAXATION:
            raise UsageError(f"relaxation {config.relaxation}: the supernet of space "
                             f"{config.space} offers no relaxation but {DEFAULT_RELAXATION}")
        return
    before = {id(p) for p in model.parameters()}
    model.set_relaxation(config.relaxation, config.relaxation_options)
    if {id(p) for p in model.parameters()} == before:
        return  # nothing new (the same relaxation, or one without parameters: GDAS)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    info = D.dist_info_from_env()
    if info.enabled:
        if any(isinstance(m, D.GlobalBatchNorm2d) for m in model.modules()):
            D.convert_global_batchnorm(model)
        D.broadcast_module(model, info)


def build_optimizers(config: SearchConfig, model: nn.Module) -> tuple[Any, Any, Any]:
    """``(weight optimiser, its schedule, α optimiser)`` of ``model``'s supernet, after
    installing its relaxation (:func:`install_relaxation`)."""
    install_relaxation(config, model)
    w_optimizer = torch.optim.SGD(model.weights(), lr=config.w_lr, momentum=config.w_momentum,
                                  weight_decay=config.w_weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        w_optimizer, T_max=config.epochs, eta_min=config.w_lr_min)
    arch_optimizer = torch.optim.Adam(
        model.arch_parameters(), lr=config.arch_lr,
        betas=(config.arch_beta1, config.arch_beta2), weight_decay=config.arch_weight_decay)
    return w_optimizer, scheduler, arch_optimizer
