"""The spatial sizes layers see, recorded in one forward pass (operator norms depend on them)."""

from __future__ import annotations

import torch
from torch import nn

#: ``id(module)`` → the (H, W) of its first 4-D input.
Shapes = dict[int, tuple[int, int]]


def record_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> Shapes:
    """The (H, W) input size of every module of ``model`` reached by one eval-mode forward
    of a zero image of ``input_shape`` (C, H, W); the training flag is restored."""
    shapes: Shapes = {}

    def hook(module: nn.Module, inputs: tuple) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() == 4:
            shapes.setdefault(id(module), tuple(inputs[0].shape[-2:]))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()  # a train-mode pass would update batch-norm statistics
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return shapes


def layer_input_shapes(model: nn.Module, layers: list[nn.Module],
                       input_shape: tuple[int, ...]) -> dict[nn.Module, tuple[int, ...]]:
    """The input shape of each of ``layers`` in one eval-mode forward of a zero image of
    ``input_shape`` (C, H, W, or with a batch dimension) through ``model``; the model's
    train/eval flags are restored afterwards (module by module: a supernet's parts may be
    in different modes)."""
    shapes: dict[nn.Module, tuple[int, ...]] = {}

    def record(module: nn.Module, args: tuple) -> None:
        shapes.setdefault(module, tuple(args[0].shape))

    handles = [layer.register_forward_pre_hook(record) for layer in layers]
    modes = {m: m.training for m in model.modules()}
    param = next(model.parameters())
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape[-3:], device=param.device, dtype=param.dtype))
    finally:
        for handle in handles:
            handle.remove()
        for m, mode in modes.items():
            m.training = mode
    return shapes
