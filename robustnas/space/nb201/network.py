"""The discrete NAS-Bench-201 network (the benchmark's ``TinyNetwork`` layout).

Normalise (inside the model, so attacks work in [0, 1] pixels) → 3×3 conv stem (no bias) +
BN → N cells at C → residual block (stride 2) → N cells at 2C → residual block (stride 2) →
N cells at 4C → BN → ReLU → global average pool → linear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from robustnas.space.nb201.blocks import ResNetBasicBlock
from robustnas.space.nb201.cell import NB201Cell
from robustnas.space.nb201.genotype import NB201Genotype
from robustnas.space.nb201.lipschitz import network_bound
from robustnas.space.normalize import Normalize, channel_stats


def stage_layout(C: int, N: int) -> list[tuple[int, bool]]:
    """``(channels, is_residual_block)`` of every layer after the stem: 3 stages of ``N``
    cells at C, 2C, 4C with a stride-2 residual block between stages."""
    return ([(C, False)] * N + [(2 * C, True)] + [(2 * C, False)] * N + [(4 * C, True)]
            + [(4 * C, False)] * N)


class NB201Network(nn.Module):
    """A NAS-Bench-201 network for one cell. ``forward`` returns logits.

    ``C`` (16 in the benchmark) is the first stage's width and ``N`` (5) the cells per stage.
    """

    payload_kind = "nb201-network"
    space = "nb201"

    def __init__(self, genotype: NB201Genotype, C: int = 16, N: int = 5, num_classes: int = 10,
                 in_channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__()
        if C < 1 or N < 1 or num_classes < 1 or in_channels < 1:
            raise ValueError("C, N, num_classes and in_channels must be positive")
        mean, std = channel_stats(in_channels, mean, std)
        self.genotype = genotype
        self.config = dict(C=C, N=N, num_classes=num_classes, in_channels=in_channels,
                           mean=list(mean), std=list(std))
        self.drop_path_prob = 0.0  # NAS-Bench-201 trains without drop-path; kept for trainers
        self.normalize = Normalize(mean, std)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C))
        self.cells = nn.ModuleList()
        C_prev = C
        for channels, residual in stage_layout(C, N):
            if residual:
                self.cells.append(ResNetBasicBlock(C_prev, channels, 2))
            else:
                self.cells.append(NB201Cell(genotype, channels))
            C_prev = channels
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def payload_arch(self) -> dict:
        """Constructor arguments plus the cell string (for checkpoints)."""
        return {**self.config, "genotype": self.genotype.to_dict()}

    def describe(self) -> str:
        """The cell string, as ``describe_architecture`` shows it."""
        return f"NAS-Bench-201 {self.genotype.to_string()}"

    def lipschitz_bound(self, bound: Callable[[nn.Module], float]) -> float:
        """Upper bound on the L2 Lipschitz constant of the logits (eval mode;
        :mod:`robustnas.space.nb201.lipschitz`)."""
        return network_bound(self, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(self.normalize(x))
        for cell in self.cells:
            h = cell(h)
        h = self.lastact(h)
        return self.classifier(self.global_pooling(h).flatten(1))
