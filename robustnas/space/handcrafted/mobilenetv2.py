"""MobileNetV2 in its CIFAR form (Sandler et al., 2018).

Layout of the widely used CIFAR definition (kuangliu/pytorch-cifar): a 3×3 stride-1 stem
(32 channels) + BN + ReLU; inverted-residual blocks (expansion, out channels, repeats,
stride) = (1,16,1,1) (6,24,2,1) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1) —
the second stage's stride 2 changed to 1 for 32×32 inputs — each block 1×1 expand + BN +
ReLU, 3×3 depthwise + BN + ReLU, 1×1 project + BN, with a residual when the stride is 1
(through a 1×1 convolution + BN when the channels change); then 1×1 convolution to 1280 +
BN + ReLU, global average pooling and a linear classifier. 10 classes: 2,296,922
parameters. (That definition uses ReLU, not ReLU6, and so does this one.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.space.handcrafted.base import HANDCRAFTED, HandcraftedNet

# (expansion, out channels, repeats, stride of the first repeat)
CIFAR_CFG: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    """Expand (1×1), depthwise (3×3, carries the stride), project (1×1, linear)."""

    def __init__(self, c_in: int, c_out: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = expansion * c_in
        self.stride = stride
        self.conv1 = nn.Conv2d(c_in, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module | None = None
        if stride == 1:
            self.shortcut = nn.Identity() if c_in == c_out else nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.shortcut is not None else out

    def lipschitz(self, bound: Callable[[nn.Module], float]) -> float:
        """Main path, plus the shortcut when there is one."""
        main = math.prod(bound(m) for m in (self.conv1, self.bn1, self.conv2, self.bn2,
                                            self.conv3, self.bn3))
        return main + (bound(self.shortcut) if self.shortcut is not None else 0.0)


class MobileNetV2(HandcraftedNet):
    """CIFAR MobileNetV2."""

    def __init__(self, name: str = "mobilenetv2", width: float = 1.0, num_classes: int = 10,
                 in_channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__(name, width, num_classes, in_channels, mean, std)
        c = self.ch(32)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        blocks = []
        for expansion, out, repeats, stride in CIFAR_CFG:
            for j in range(repeats):
                blocks.append(InvertedResidual(c, self.ch(out), expansion,
                                               stride if j == 0 else 1))
                c = self.ch(out)
        self.blocks = nn.Sequential(*blocks)
        last = self.ch(1280)
        self.head = nn.Sequential(nn.Conv2d(c, last, 1, bias=False), nn.BatchNorm2d(last),
                                  nn.ReLU(inplace=True))
        self.classifier = nn.Linear(last, num_classes)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def lipschitz_features(self, bound: Any) -> float:
        blocks = math.prod(block.lipschitz(bound) for block in self.blocks)
        return bound(self.normalize) * bound(self.stem) * blocks * bound(self.head)


@HANDCRAFTED.register("mobilenetv2")
def mobilenetv2(**kwargs) -> MobileNetV2:
    """MobileNetV2, CIFAR form."""
    return MobileNetV2("mobilenetv2", **kwargs)
