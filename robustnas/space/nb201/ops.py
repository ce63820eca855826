"""The five NAS-Bench-201 candidate operations, registered by name.

Each factory has the signature ``factory(C, affine, track_running_stats) -> nn.Module`` and
maps ``C`` channels to ``C`` channels at stride 1 (inside NAS-Bench-201 cells the input and
output widths are equal and nothing is strided). ``nor_conv_k×k`` is ReLU → Conv (no bias) →
BN. The pooling has no BN (unlike DARTS' mixed ops). The order of :data:`NB201_OPS` is the
order of the columns of α.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustnas.registry import Registry
from robustnas.space.nb201.genotype import NB201_OPS  # noqa: F401 (re-exported, torch-free)

OpFactory = Callable[[int, bool, bool], nn.Module]

NB201_OP_REGISTRY: Registry[OpFactory] = Registry("NAS-Bench-201 operation")



class ReLUConvBN(nn.Sequential):
    """ReLU → k×k convolution without bias → BN (NAS-Bench-201's ``nor_conv`` and the
    convolutions of its residual blocks)."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """``none``: a zero tensor of the input's shape (it still passes gradients of shape)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)

    def lipschitz_bound(self, bound: Callable[[nn.Module], float]) -> float:
        """0: a constant map."""
        return 0.0


class Identity(nn.Module):
    """``skip_connect``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def lipschitz_bound(self, bound: Callable[[nn.Module], float]) -> float:
        """1: the identity."""
        return 1.0


NB201_OP_REGISTRY.add("none", lambda C, affine, track: Zero())
NB201_OP_REGISTRY.add("skip_connect", lambda C, affine, track: Identity())
NB201_OP_REGISTRY.add("nor_conv_1x1",
                      lambda C, affine, track: ReLUConvBN(C, C, 1, 1, 0, affine, track))
NB201_OP_REGISTRY.add("nor_conv_3x3",
                      lambda C, affine, track: ReLUConvBN(C, C, 3, 1, 1, affine, track))
NB201_OP_REGISTRY.add("avg_pool_3x3",
                      lambda C, affine, track: nn.AvgPool2d(3, stride=1, padding=1,
                                                            count_include_pad=False))


def make_nb201_op(name: str, C: int, affine: bool = True,
                  track_running_stats: bool = True) -> nn.Module:
    """Build operation ``name`` on ``C`` channels; unknown names raise a UsageError."""
    return NB201_OP_REGISTRY.get(name)(C, affine, track_running_stats)
