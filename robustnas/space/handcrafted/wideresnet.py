"""Wide residual networks WRN-depth-k (Zagoruyko & Komodakis, 2016), CIFAR form.

Layout of the definition used by TRADES and RobustBench: a 3×3 stride-1 stem convolution to
16 channels, three groups of n = (depth - 4) / 6 pre-activation basic blocks with
16k/32k/64k channels (strides 1, 2, 2; BN-ReLU before each 3×3 convolution; a 1×1
projection of the pre-activated input where the channels change), a final BN + ReLU, global
average pooling and a linear classifier (with bias). No dropout. 10 classes: WRN-28-10 has
36,479,194 parameters, WRN-34-10 46,160,474.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.errors import UsageError
from robustnas.space.handcrafted.base import HANDCRAFTED, HandcraftedNet

_NAME = re.compile(r"^(?:wrn|wide-?resnet)-?(\d+)-(\d+)$")


class WideBlock(nn.Module):
    """Pre-activation basic block; the projection sees the pre-activated input."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
                         if c_in != c_out or stride != 1 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return out + (self.shortcut(pre) if self.shortcut is not None else x)

    def lipschitz(self, bound: Callable[[nn.Module], float]) -> float:
        """Main path plus shortcut (the projection sees the pre-activated input)."""
        main = math.prod(bound(m) for m in (self.bn1, self.conv1, self.bn2, self.conv2))
        short = bound(self.shortcut) * bound(self.bn1) if self.shortcut is not None else 1.0
        return main + short


class WideStages(HandcraftedNet):
    """The WideResNet layout: a 3×3 stem, stages of :class:`WideBlock` (strides 1, 2, 2),
    final BN + ReLU; shared by WRN-depth-k and NARes' per-stage depths and widths."""

    def build_stages(self, in_channels: int, stem_channels: int,
                     stages: Sequence[tuple[int, int]], num_classes: int) -> None:
        """Stem, ``stages`` as ``(blocks, out channels)``, final BN and the classifier."""
        c = stem_channels
        self.stem = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        groups = []
        for i, (blocks, out) in enumerate(stages):
            layers = []
            for j in range(blocks):
                layers.append(WideBlock(c, out, 2 if i > 0 and j == 0 else 1))
                c = out
            groups.append(nn.Sequential(*layers))
        self.groups = nn.Sequential(*groups)
        self.final_bn = nn.BatchNorm2d(c)
        self.classifier = nn.Linear(c, num_classes)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.final_bn(self.groups(self.stem(x))))

    def lipschitz_features(self, bound: Any) -> float:
        """Product of the layers' bounds, each block as main path plus shortcut."""
        blocks = [block.lipschitz(bound) for group in self.groups for block in group]
        return (bound(self.normalize) * bound(self.stem) * math.prod(blocks)
                * bound(self.final_bn))


class WideResNet(WideStages):
    """WRN-``depth``-``widen`` (depth = 6n + 4)."""

    def __init__(self, depth: int = 28, widen: int = 10, width: float = 1.0,
                 num_classes: int = 10, in_channels: int = 3,
                 mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        if depth < 10 or (depth - 4) % 6 or widen < 1:
            raise UsageError(f"WideResNet needs depth = 6n + 4 >= 10 and widen factor >= 1, "
                             f"got depth {depth}, widen {widen}")
        super().__init__(f"wrn-{depth}-{widen}", width, num_classes, in_channels, mean, std)
        n = (depth - 4) // 6
        self.build_stages(in_channels, self.ch(16),
                          [(n, self.ch(base * widen)) for base in (16, 32, 64)], num_classes)


def parse_wrn(name: str) -> tuple[int, int] | None:
    """``(depth, widen)`` for names like ``wrn-28-10`` / ``wideresnet-34-10``, else None."""
    match = _NAME.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def wide_resnet(depth: int, widen: int):
    """A factory for WRN-``depth``-``widen``."""

    def factory(**kwargs) -> WideResNet:
        return WideResNet(depth, widen, **kwargs)

    factory.__doc__ = f"WRN-{depth}-{widen}."
    return factory


HANDCRAFTED.add("wrn-28-10", wide_resnet(28, 10))
HANDCRAFTED.add("wrn-34-10", wide_resnet(34, 10))
