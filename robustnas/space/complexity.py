"""Parameter and multiply-accumulate counts of a model."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, include_auxiliary: bool = False) -> int:
    """Trainable weights, as the reference DARTS code counts them.

    For a supernet the architecture parameters are excluded; the auxiliary head is
    excluded unless ``include_auxiliary``, wherever it sits: an ensemble's members carry
    theirs as ``members.<i>.auxiliary_head``, and the ensemble must count its members as
    they count themselves.
    """
    named = model.named_weights() if hasattr(model, "named_weights") else model.named_parameters()
    return sum(p.numel() for name, p in named
               if include_auxiliary or "auxiliary_head" not in name.split("."))


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on one input of ``input_shape`` (C, H, W).

    Counted with PyTorch's FLOP counter (convolutions and matrix products; one MAC is two
    FLOPs), in eval mode, so the auxiliary head is not counted.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = torch.zeros(1, *input_shape, device=device)
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
