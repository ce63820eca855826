"""Input normalisation inside the model, shared by every space and hand-crafted network."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` as the model's first layer.

    Keeping normalisation inside the model means every attack, ε and measure works in
    [0, 1] pixel space.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean)).float().view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).float().view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def lipschitz_bound(self, bound: Callable[[nn.Module], float]) -> float:
        """``1 / min(std)``: a per-channel scaling (the shift cancels in differences)."""
        return float(1.0 / self.std.min())


def channel_stats(in_channels: int, mean: Sequence[float] | None,
                  std: Sequence[float] | None) -> tuple[list[float], list[float]]:
    """Per-channel normalisation constants (identity when not given), checked for length."""
    mean = [0.0] * in_channels if mean is None else [float(m) for m in mean]
    std = [1.0] * in_channels if std is None else [float(s) for s in std]
    if len(mean) != in_channels or len(std) != in_channels:
        raise ValueError(f"mean/std need {in_channels} values, got {len(mean)}/{len(std)}")
    if any(s <= 0 for s in std):
        raise ValueError("std values must be positive")
    return mean, std
