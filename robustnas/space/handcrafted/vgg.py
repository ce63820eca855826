"""VGG-16 with batch normalisation in its CIFAR form (Simonyan & Zisserman, 2015).

Layout of the widely used CIFAR definition (kuangliu/pytorch-cifar): thirteen 3×3
convolutions (with bias) + BN + ReLU in the configuration 64-64-M-128-128-M-256×3-M-512×3-M-
512×3-M (M = 2×2 max-pool), then a single linear layer 512 -> classes (no 4096-wide fully
connected layers). 10 classes: 14,728,266 parameters. Deviation: the max-pools use
``ceil_mode`` so that inputs smaller than 32×32 (e.g. 8×8 digits) keep a 1×1 map instead of
vanishing; on 32×32 inputs this is identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from robustnas.space.handcrafted.base import HANDCRAFTED, HandcraftedNet

VGG16: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                512, 512, 512, "M", 512, 512, 512, "M")


class VGG(HandcraftedNet):
    """CIFAR VGG with BN for the layer list ``cfg`` (ints: conv widths, "M": max-pool)."""

    def __init__(self, name: str, cfg: Sequence[int | str], width: float = 1.0,
                 num_classes: int = 10, in_channels: int = 3,
                 mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__(name, width, num_classes, in_channels, mean, std)
        layers: list[nn.Module] = []
        c = in_channels
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                out = self.ch(int(item))
                layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out),
                           nn.ReLU(inplace=True)]
                c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def lipschitz_features(self, bound: Any) -> float:
        return bound(self.normalize) * bound(self.features)


@HANDCRAFTED.register("vgg16-bn")
def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 with batch normalisation."""
    return VGG("vgg16-bn", VGG16, **kwargs)
