"""The eight DARTS candidate operations, registered by name.

Each factory has the signature ``factory(C, stride, affine) -> nn.Module`` and maps a
tensor of ``C`` channels to ``C`` channels (spatially halved when ``stride == 2``).
The order of :data:`PRIMITIVES` is the order of the rows of α and matters for
checkpoints and genotypes. Operations that are not plain PyTorch layers or sequences of
them define ``lipschitz_bound(bound)`` for the Lipschitz bound of a network
(:mod:`robustnas.space.darts.lipschitz`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from robustnas.registry import Registry

OpFactory = Callable[[int, int, bool], nn.Module]
#: A per-layer Lipschitz bound (:meth:`robustnas.lipschitz.LayerBounder.module`).
Bound = Callable[[nn.Module], float]

OPS: Registry[OpFactory] = Registry("operation")

PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


class ReLUConvBN(nn.Sequential):
    """ReLU → k×k convolution → BN, used to preprocess cell inputs."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU → depthwise (dilated) k×k → pointwise 1×1 → BN."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 dilation: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding,
                      dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable blocks; only the first carries the stride."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine),
        )


class Identity(nn.Module):
    """``skip_connect`` at stride 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def lipschitz_bound(self, bound: Bound) -> float:
        """1: the identity."""
        return 1.0


class Zero(nn.Module):
    """The ``none`` operation: a zero tensor of the output shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)

    def lipschitz_bound(self, bound: Bound) -> float:
        """0: a constant map."""
        return 0.0


class _StridedPointwise(nn.Conv2d):
    """A 1×1 stride-2 convolution that runs in the contiguous layout when it is tiny.

    torch's CPU backward of a strided 1×1 convolution in channels_last corrupts the heap for
    2 to 6 input channels (seen with torch 2.13; either the input or the weight in
    channels_last suffices). Below 8 input channels the input and weight are therefore made
    contiguous first (same values; the layer is too small for the layout to matter).
    """

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__(C_in, C_out, 1, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels < 8 and x.device.type == "cpu":
            return nn.functional.conv2d(_plain_strides(x), _plain_strides(self.weight), None,
                                        self.stride)
        return super().forward(x)


def _plain_strides(t: torch.Tensor) -> torch.Tensor:
    """``t`` with row-major strides (``contiguous()`` keeps channels_last strides on tensors
    whose size-1 dimensions make both layouts count as contiguous)."""
    if t.stride() == torch.empty(t.shape, device="meta").stride():
        return t
    return t.clone(memory_format=torch.contiguous_format)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1×1 stride-2 convs on inputs shifted by one pixel."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        if C_out % 2:
            raise ValueError("FactorizedReduce needs an even number of output channels")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = _StridedPointwise(C_in, C_out // 2)
        self.conv_2 = _StridedPointwise(C_in, C_out // 2)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = x[:, :, 1:, 1:]
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            # Odd sizes: pad first so both branches produce the same spatial size.
            shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))

    def lipschitz_bound(self, bound: Bound) -> float:
        """``hypot`` of the two branches (a channel concatenation), times the BN."""
        branches = math.hypot(bound(self.conv_1), bound(self.conv_2))
        return branches * bound(self.bn)


class PoolBN(nn.Module):
    """A 3×3 pooling, optionally followed by a non-affine BN (as inside DARTS mixed ops)."""

    def __init__(self, kind: str, C: int, stride: int, with_bn: bool) -> None:
        super().__init__()
        if kind == "max":
            self.pool: nn.Module = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        self.bn = nn.BatchNorm2d(C, affine=False) if with_bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        return self.bn(x) if self.bn is not None else x

    def lipschitz_bound(self, bound: Bound) -> float:
        """The pooling's bound, times the BN's."""
        return bound(self.pool) * (bound(self.bn) if self.bn is not None else 1.0)


OPS.add("none", lambda C, stride, affine: Zero(stride))
# Pools get a non-affine BN only inside the supernet's mixed ops (affine=False), as in DARTS.
OPS.add("max_pool_3x3", lambda C, stride, affine: PoolBN("max", C, stride, with_bn=not affine))
OPS.add("avg_pool_3x3", lambda C, stride, affine: PoolBN("avg", C, stride, with_bn=not affine))
OPS.add("skip_connect",
        lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine))
OPS.add("sep_conv_3x3", lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine))
OPS.add("sep_conv_5x5", lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine))
OPS.add("dil_conv_3x3", lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine))
OPS.add("dil_conv_5x5", lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine))


def make_op(name: str, C: int, stride: int, affine: bool) -> nn.Module:
    """Build operation ``name``; unknown names raise a :class:`~robustnas.errors.UsageError`."""
    return OPS.get(name)(C, stride, affine)
