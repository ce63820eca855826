"""nwot (NASWOT; Mellor et al., "Neural Architecture Search without Training", ICML 2021).

Each image gets a binary code c_n: 1 where an input of an ``nn.ReLU`` module is positive
(all ReLU calls of the forward pass, concatenated). With the Hamming-similarity kernel
K_{nm} = c_n·c_m + (1 − c_n)·(1 − c_m) (the number of units where n and m agree), the score
is log|det K| (``slogdet``). Hooks read the ReLU *inputs* (so an in-place ReLU reads its
own output, whose sign pattern is the same). A network that calls ``F.relu`` rather than
``nn.ReLU`` modules (NARes' WideResNets) contributes only its modules' units; the authors'
code has the same limitation. Eval mode is not used: the references run the network in
train mode (batch statistics), and so do we. Without any ReLU module the score is NaN.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy


def hamming_kernel(codes: torch.Tensor) -> np.ndarray:
    """K = C Cᵀ + (1 − C)(1 − C)ᵀ of binary codes ``C`` (N × units), float64."""
    c = codes.double()
    return (c @ c.T + (1 - c) @ (1 - c).T).numpy()


@register_proxy("nwot", "Mellor et al., ICML 2021",
                "log-det of the ReLU activation-pattern kernel")
def nwot(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """log|det K| of the ReLU binary codes at initialisation."""
    model.train()
    kernel = np.zeros((len(x), len(x)))

    def count(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal kernel
        kernel = kernel + hamming_kernel(inputs[0].detach().reshape(len(x), -1) > 0)

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, nn.ReLU)]
    if not handles:
        return float("nan")
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return float(np.linalg.slogdet(kernel)[1])
