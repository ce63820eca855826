"""Pre-activation ResNet-18 in its CIFAR form (He et al., "Identity Mappings", 2016).

The definition used throughout adversarial-training work (Wong et al. 2020, Rice et al.
2020): a 3×3 stride-1 stem convolution (no BN, no max-pool), pre-activation basic blocks
(BN-ReLU before each convolution; a 1×1 projection without BN, applied to the
pre-activated input, where the shape changes), a final BN + ReLU, global average pooling
and a linear classifier. 10 classes: 11,172,170 parameters (the kuangliu/pytorch-cifar
variant omits the final BN and has 1,024 fewer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.space.handcrafted.base import HANDCRAFTED, HandcraftedNet


class PreActBlock(nn.Module):
    """BN-ReLU-conv3×3, BN-ReLU-conv3×3, plus the (projected) input."""

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, planes, 1, stride=stride, bias=False)
                         if stride != 1 or c_in != planes else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut

    def lipschitz(self, bound: Callable[[nn.Module], float]) -> float:
        """Main path plus shortcut (the projection sees the pre-activated input)."""
        main = math.prod(bound(m) for m in (self.bn1, self.conv1, self.bn2, self.conv2))
        short = bound(self.shortcut) * bound(self.bn1) if self.shortcut is not None else 1.0
        return main + short


class PreActResNet(HandcraftedNet):
    """CIFAR pre-activation ResNet with ``blocks`` basic blocks per stage."""

    def __init__(self, name: str, blocks: Sequence[int], width: float = 1.0,
                 num_classes: int = 10, in_channels: int = 3,
                 mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__(name, width, num_classes, in_channels, mean, std)
        c = self.ch(64)
        self.stem = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        stages = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
            layers = []
            for j in range(n):
                layers.append(PreActBlock(c, self.ch(planes), 2 if i > 0 and j == 0 else 1))
                c = self.ch(planes)
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.final_bn = nn.BatchNorm2d(c)
        self.classifier = nn.Linear(c, num_classes)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.final_bn(self.stages(self.stem(x))))

    def lipschitz_features(self, bound: Any) -> float:
        blocks = [block.lipschitz(bound) for stage in self.stages for block in stage]
        return (bound(self.normalize) * bound(self.stem) * math.prod(blocks)
                * bound(self.final_bn))


@HANDCRAFTED.register("preact-resnet18")
def preact_resnet18(**kwargs) -> PreActResNet:
    """Pre-activation ResNet-18 (2-2-2-2)."""
    return PreActResNet("preact-resnet18", (2, 2, 2, 2), **kwargs)
