"""Groups of layers of one geometry whose operator norms are power-iterated together.

Stacking layers of equal geometry makes one batched power iteration per group and step
(:mod:`robustnas.lipschitz.spectral`) instead of one per layer. Each group keeps its
persistent vector (``vector``, saved with checkpoints so a resumed search continues the
same estimates) and returns one norm per member from :meth:`LayerGroup.compute`:

* :class:`DepthwiseGroup`: depthwise convolutions of one kernel, stride, padding, dilation
  and feature-map size, stacked into one grouped convolution (a norm per channel, the
  maximum per member);
* :class:`MatrixGroup`: 1×1 convolutions of one shape (their norm is the matrix norm);
* :class:`ConvGroup`: any other convolution, on its own;
* :class:`BatchNormGroup`: batch norms of one width, analytic (no vector).
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.lipschitz.spectral import (
    batchnorm_scale,
    conv_power_iteration,
    matrix_power_iteration,
)


def is_depthwise(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` is depthwise (one filter per channel, channels unchanged)."""
    return conv.groups == conv.in_channels == conv.out_channels and conv.weight.shape[1] == 1


def is_pointwise(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` is a 1×1 convolution without padding, dilation or groups."""
    return tuple(conv.kernel_size) == (1, 1) and conv.groups == 1 and \
        tuple(conv.padding) == (0, 0) and tuple(conv.dilation) == (1, 1)


class LayerGroup:
    """Layers of one geometry whose norms are computed together; one slot per member."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.members: list[nn.Module] = []
        self.vector: torch.Tensor | None = None

    def add(self, module: nn.Module) -> int:
        """Add ``module``; its slot (index) in :meth:`compute`'s result."""
        self.members.append(module)
        return len(self.members) - 1

    def fresh_vector(self, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """A random starting vector for the power iteration (groups with one)."""
        raise NotImplementedError

    def compute(self, iters: int) -> torch.Tensor:
        """``iters`` more power iterations from :attr:`vector`; one norm per member."""
        raise NotImplementedError


class DepthwiseGroup(LayerGroup):
    """Depthwise convolutions of one geometry and feature-map size, as one grouped one."""

    def __init__(self, key: str, conv: nn.Conv2d, size: tuple[int, int]) -> None:
        super().__init__(key)
        self.geometry = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
        self.size = size

    def fresh_vector(self, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        channels = sum(m.weight.shape[0] for m in self.members)
        return torch.randn(1, channels, *self.size, generator=generator).to(device)

    def compute(self, iters: int) -> torch.Tensor:
        weight = torch.cat([m.weight.detach() for m in self.members])
        self.vector = self.vector.to(weight)
        sigma, self.vector = conv_power_iteration(weight, self.vector, groups=weight.shape[0],
                                                  iters=iters, per_channel=True,
                                                  **self.geometry)
        owner = torch.repeat_interleave(
            torch.arange(len(self.members), device=weight.device),
            torch.tensor([m.weight.shape[0] for m in self.members], device=weight.device))
        return sigma.new_zeros(len(self.members)).scatter_reduce(0, owner, sigma, "amax")


class MatrixGroup(LayerGroup):
    """1×1 convolutions of one (out, in) shape: a batch of matrices."""

    def __init__(self, key: str, shape: tuple[int, int]) -> None:
        super().__init__(key)
        self.shape = shape

    def fresh_vector(self, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.randn(len(self.members), self.shape[1], generator=generator).to(device)

    def compute(self, iters: int) -> torch.Tensor:
        mats = torch.stack([m.weight.detach().flatten(1) for m in self.members])
        self.vector = self.vector.to(mats)
        sigma, self.vector = matrix_power_iteration(mats, self.vector, iters)
        return sigma


class ConvGroup(LayerGroup):
    """Any other convolution, on its own."""

    def __init__(self, key: str, conv: nn.Conv2d, shape: tuple[int, ...]) -> None:
        super().__init__(key)
        self.shape = shape

    def fresh_vector(self, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.randn(1, *self.shape[1:], generator=generator).to(device)

    def compute(self, iters: int) -> torch.Tensor:
        conv = self.members[0]
        self.vector = self.vector.to(conv.weight)
        sigma, self.vector = conv_power_iteration(
            conv.weight.detach(), self.vector, stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, groups=conv.groups, iters=iters)
        return sigma.view(1)


class BatchNormGroup(LayerGroup):
    """Batch norms of one width and affinity (analytic: no vector)."""

    def compute(self, iters: int) -> torch.Tensor:
        var = torch.stack([m.running_var for m in self.members]).float()
        eps = var.new_tensor([m.eps for m in self.members]).unsqueeze(1)
        weight = None
        if self.members[0].affine:
            weight = torch.stack([m.weight.detach() for m in self.members]).float()
        return batchnorm_scale(var + eps, 0.0, weight)
