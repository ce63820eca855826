"""Layers shared by the DARTS supernet and the discrete network."""

from __future__ import annotations

from torch import nn

from robustnas.space.darts.ops import FactorizedReduce, ReLUConvBN
from robustnas.space.normalize import Normalize, channel_stats  # noqa: F401  (re-exported)


def stem(in_channels: int, C_stem: int) -> nn.Sequential:
    """The CIFAR stem: 3×3 convolution and BN."""
    return nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False),
                         nn.BatchNorm2d(C_stem))


def preprocess_inputs(C_pp: int, C_p: int, C: int, reduction_prev: bool,
                      affine: bool) -> tuple[nn.Module, nn.Module]:
    """The two input preprocessors of a cell (FactorizedReduce after a reduction)."""
    pre0: nn.Module = (FactorizedReduce(C_pp, C, affine) if reduction_prev
                       else ReLUConvBN(C_pp, C, 1, 1, 0, affine))
    return pre0, ReLUConvBN(C_p, C, 1, 1, 0, affine)


def reduction_layers(layers: int) -> tuple[int, ...]:
    """Indices of the reduction cells: at one third and two thirds of the depth."""
    return (layers // 3, 2 * layers // 3)
