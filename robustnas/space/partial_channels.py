"""Partial channel connections (PC-DARTS, Xu et al., ICLR 2020) around any space's mixed op.

An edge of a PC-DARTS supernet sends only the first ``C/K`` channels of its input through
the mixed operation (built on ``C/K`` channels); the other ``C - C/K`` channels bypass it,
and a channel shuffle with ``K`` groups interleaves both parts, so that the next edge sees
another part of the channels in the mixed op::

    edge(x) = shuffle_K(concat(mixed(x[:, :C/K]), bypass(x[:, C/K:])))

``bypass`` is the identity, or on a stride-2 edge (DARTS' reduction cells) a 2×2 max pool
with stride 2, as in the authors' code. The pool rounds up (``ceil_mode``), so that odd
sizes give the strided operations' ``ceil(H/2)``; on even sizes it is the authors' pool
(their code fails on odd sizes). The channel shuffle is the authors' (view as ``K`` groups,
swap the group and channel axes, flatten), written with ``reshape``.

The supernets build these edges when their relaxation asks for ``K > 1`` partial channels
(:mod:`robustnas.space.relaxations.pc_darts`); the mixed op inside is the space's own, so
the same wrapper serves DARTS and NAS-Bench-201.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: A per-layer Lipschitz bound (:meth:`robustnas.lipschitz.LayerBounder.module`).
Bound = Callable[[nn.Module], float]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` equal blocks of ``x``'s channels (N, C, H, W)."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class PartialChannels(nn.Module):
    """One partial-channel edge: ``mixed`` on the first ``C/k`` channels, a bypass for the
    rest, then a channel shuffle (see the module docstring).

    ``mixed`` is the space's mixed op built on ``C // k`` channels; its ``forward(x,
    weights[, index])`` signature is kept. Edge weights are never folded into the
    operation weights here: PC-DARTS' β scales the whole edge, bypass included.
    """

    def __init__(self, mixed: nn.Module, k: int, stride: int) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"partial channels need k >= 1, got {k}")
        self.k = k
        self.mixed = mixed
        self.stride = stride
        # A stride-2 edge shrinks the mixed part; the bypass must shrink alike to be concatenated.
        self.bypass: nn.Module = (nn.Identity() if stride == 1
                                  else nn.MaxPool2d(2, 2, ceil_mode=True))

    @property
    def ops(self) -> nn.ModuleList:
        """The candidate operations (of the mixed op inside, on ``C/k`` channels)."""
        return self.mixed.ops  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                index: int | None = None) -> torch.Tensor:
        part = x.shape[1] // self.k
        inner = self.mixed(x[:, :part], weights) if index is None \
            else self.mixed(x[:, :part], weights, index)
        rest = self.bypass(x[:, part:])
        return channel_shuffle(torch.cat([inner, rest], dim=1), self.k)

    def combine_bound(self, mixed_bound: float, bound: Bound) -> float:
        """The edge's Lipschitz bound from its mixed op's: the two parts act on disjoint
        channels and the shuffle is a permutation, so ``max(L_mixed, L_bypass)``."""
        return max(mixed_bound, bound(self.bypass))


def mixed_edge_bound(edge: nn.Module, weights: torch.Tensor, bound: Bound) -> float:
    """Lipschitz bound of one supernet edge at operation weights ``weights``: ``Σ_o |w_o|
    L(op_o)`` for a plain mixed op, combined with the bypass for a :class:`PartialChannels`
    edge. Operations of weight exactly 0 (GDAS' unsampled ones) are skipped."""
    w = weights.detach().abs()
    mixed = sum(float(w[o]) * bound(op) for o, op in enumerate(edge.ops) if float(w[o]) != 0.0)
    if isinstance(edge, PartialChannels):
        return edge.combine_bound(mixed, bound)
    return mixed
