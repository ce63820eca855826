"""ResNet-18 and ResNet-50 in their CIFAR form (He et al., 2016).

Layout of the widely used CIFAR definition (kuangliu/pytorch-cifar): a 3×3 stride-1 stem
convolution (64 channels) + BN + ReLU and no max-pool, four stages of 64/128/256/512 planes
(strides 1, 2, 2, 2), projection shortcuts (1×1 convolution + BN) where the shape changes,
global average pooling and a linear classifier. 10 classes: ResNet-18 has 11,173,962
parameters, ResNet-50 23,520,842.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.space.handcrafted.base import HANDCRAFTED, HandcraftedNet


def _projection(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with BN; ReLU after the residual sum."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _projection(c_in, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    def lipschitz(self, bound: Callable[[nn.Module], float]) -> float:
        """Residual sum: main path plus shortcut (ReLUs are 1-Lipschitz)."""
        main = math.prod(bound(m) for m in (self.conv1, self.bn1, self.conv2, self.bn2))
        return main + bound(self.shortcut)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (carries the stride), 1×1 expand ×4, each with BN."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = _projection(c_in, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))

    def lipschitz(self, bound: Callable[[nn.Module], float]) -> float:
        """Residual sum: main path plus shortcut (ReLUs are 1-Lipschitz)."""
        main = math.prod(bound(m) for m in (self.conv1, self.bn1, self.conv2, self.bn2,
                                            self.conv3, self.bn3))
        return main + bound(self.shortcut)


class ResNet(HandcraftedNet):
    """CIFAR ResNet with ``blocks`` blocks per stage."""

    def __init__(self, name: str, block: type[BasicBlock] | type[Bottleneck],
                 blocks: Sequence[int], width: float = 1.0, num_classes: int = 10,
                 in_channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__(name, width, num_classes, in_channels, mean, std)
        c = self.ch(64)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        stages = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
            layers = []
            for j in range(n):
                layers.append(block(c, self.ch(planes), 2 if i > 0 and j == 0 else 1))
                c = self.ch(planes) * block.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.classifier = nn.Linear(c, num_classes)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def lipschitz_features(self, bound: Any) -> float:
        blocks = [block.lipschitz(bound) for stage in self.stages for block in stage]
        return bound(self.normalize) * bound(self.stem) * math.prod(blocks)


@HANDCRAFTED.register("resnet18")
def resnet18(**kwargs) -> ResNet:
    """ResNet-18 (basic blocks 2-2-2-2)."""
    return ResNet("resnet18", BasicBlock, (2, 2, 2, 2), **kwargs)


@HANDCRAFTED.register("resnet50")
def resnet50(**kwargs) -> ResNet:
    """ResNet-50 (bottleneck blocks 3-4-6-3)."""
    return ResNet("resnet50", Bottleneck, (3, 4, 6, 3), **kwargs)
