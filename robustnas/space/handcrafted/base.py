"""What every hand-crafted network shares: normalisation inside, pooling, a linear classifier.

A hand-crafted network is an :class:`HandcraftedNet` subclass that builds its layers in
``__init__`` (sizes multiplied by ``width`` through :meth:`HandcraftedNet.ch`), sets
``self.classifier`` (an ``nn.Linear``) and implements :meth:`HandcraftedNet.body` (normalised
images -> last feature map). Its family module registers a factory in :data:`HANDCRAFTED`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from robustnas.registry import Registry
from robustnas.space.normalize import Normalize, channel_stats

#: ``factory(width=, num_classes=, in_channels=, mean=, std=) -> HandcraftedNet`` by name.
#: Factories by name; every family module of the package is found on the first lookup.
HANDCRAFTED: Registry[Callable[..., HandcraftedNet]] = Registry(
    "hand-crafted architecture", discover=("robustnas.space.handcrafted",))


class HandcraftedNet(nn.Module):
    """Base of the hand-crafted CIFAR networks (input in [0, 1], normalised inside).

    ``forward_features`` returns the last feature map before global pooling (used by
    feature-averaging ensembles); ``forward`` pools it and applies ``classifier``.
    """

    payload_kind = "handcrafted"
    classifier: nn.Module

    def __init__(self, name: str, width: float, num_classes: int, in_channels: int,
                 mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        super().__init__()
        mean, std = channel_stats(in_channels, mean, std)
        self.arch_name = name
        self.width = float(width)
        self.config: dict[str, Any] = dict(name=name, width=self.width, num_classes=num_classes,
                                           in_channels=in_channels, mean=list(mean),
                                           std=list(std))
        self.drop_path_prob = 0.0  # set by the trainer; these networks have no drop-path
        self.normalize = Normalize(mean, std)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)

    def ch(self, channels: int) -> int:
        """``channels`` scaled by the width multiplier (rounded, at least 1)."""
        return max(1, int(round(channels * self.width)))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images -> the last feature map (N, C, H, W)."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the last feature map, before global pooling."""
        return self.body(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.forward_features(x)).flatten(1))

    def lipschitz_features(self, bound: Any) -> float:
        """Upper bound on the L2 Lipschitz constant of :meth:`forward_features` (eval mode);
        ``bound(module)`` bounds one layer (see :mod:`robustnas.evaluation.lipschitz`)."""
        raise NotImplementedError

    def lipschitz_bound(self, bound: Any) -> float:
        """Upper bound on the L2 Lipschitz constant of the logits (eval mode)."""
        return (self.lipschitz_features(bound) * bound(self.global_pooling)
                * bound(self.classifier))

    def payload_arch(self) -> dict[str, Any]:
        """Constructor arguments, as stored in checkpoints."""
        return dict(self.config)

    def describe(self) -> str:
        """``resnet18`` or ``resnet18@0.25``."""
        return self.arch_name if self.width == 1.0 else f"{self.arch_name}@{self.width:g}"
