"""DenseNet-121 in its CIFAR form (Huang et al., 2017).

Layout of the widely used CIFAR definition (kuangliu/pytorch-cifar): a 3×3 stride-1 stem
convolution to 2·growth channels (no BN, no max-pool), dense blocks of 6-12-24-16 bottleneck
layers (BN-ReLU-conv1×1 to 4·growth, BN-ReLU-conv3×3 to growth, concatenated to the input)
with growth 32, transitions (BN-ReLU-conv1×1 to half the channels, 2×2 average pool), a final
BN + ReLU, global average pooling and a linear classifier. 10 classes: 6,956,298 parameters.
The transitions' pools use ``ceil_mode`` so that inputs smaller than 32×32 (8×8 digits)
keep at least a 1×1 map; on 32×32 inputs this is identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.space.handcrafted.base import HANDCRAFTED, HandcraftedNet


class DenseLayer(nn.Module):
    """BN-ReLU-conv1×1 (4·growth), BN-ReLU-conv3×3 (growth); output concatenated to x."""

    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)

    def lipschitz(self, bound: Callable[[nn.Module], float]) -> float:
        """Concatenation of the new features and the input: sqrt(L_new² + 1)."""
        new = math.prod(bound(m) for m in (self.bn1, self.conv1, self.bn2, self.conv2))
        return math.hypot(new, 1.0)


class Transition(nn.Module):
    """BN-ReLU-conv1×1, then 2×2 average pooling."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.pool = nn.AvgPool2d(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(F.relu(self.bn(x))))

    def lipschitz(self, bound: Callable[[nn.Module], float]) -> float:
        return bound(self.bn) * bound(self.conv) * bound(self.pool)


class DenseNet(HandcraftedNet):
    """CIFAR DenseNet with ``blocks`` layers per dense block."""

    def __init__(self, name: str, blocks: Sequence[int], growth: int = 32,
                 reduction: float = 0.5, width: float = 1.0, num_classes: int = 10,
                 in_channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__(name, width, num_classes, in_channels, mean, std)
        growth = self.ch(growth)
        c = 2 * growth
        self.stem = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        parts: list[nn.Module] = []
        for i, n in enumerate(blocks):
            for _ in range(n):
                parts.append(DenseLayer(c, growth))
                c += growth
            if i < len(blocks) - 1:
                out = int(math.floor(c * reduction))
                parts.append(Transition(c, out))
                c = out
        self.dense = nn.Sequential(*parts)
        self.final_bn = nn.BatchNorm2d(c)
        self.classifier = nn.Linear(c, num_classes)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.final_bn(self.dense(self.stem(x))))

    def lipschitz_features(self, bound: Any) -> float:
        parts = math.prod(part.lipschitz(bound) for part in self.dense)
        return bound(self.normalize) * bound(self.stem) * parts * bound(self.final_bn)


@HANDCRAFTED.register("densenet121")
def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121 (6-12-24-16, growth 32)."""
    return DenseNet("densenet121", (6, 12, 24, 16), growth=32, **kwargs)
