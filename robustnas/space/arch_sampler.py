"""How a supernet turns its architecture parameters α into the mixing weights of a pass.

Shared by every space's supernet: the default :class:`ArchSampler` is DARTS' softmax; a
regulariser that samples α (the log-normal Lipschitz method,
:mod:`robustnas.space.lognormal_sampler`) installs its own sampler with the supernet's
``set_arch_sampler`` instead of special-casing the search loop, and a search relaxation
(:mod:`robustnas.space.relaxations`: PC-DARTS' edge normalisation, GDAS' Gumbel sampling)
brings its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CellWeights:
    """Mixing weights for one cell type: ``ops`` is (edges × ops); ``edges`` (edges,) or None.

    ``index`` (one operation per edge, or None): a single-path pass. Each mixed op then
    evaluates only ``ops[e][index[e]] · op_index(x)`` (GDAS); the other entries of ``ops``
    are zero in value and are never multiplied with an output. Plain Python ints, so that
    the cells do not read a device tensor once per edge.
    """

    ops: torch.Tensor
    edges: torch.Tensor | None = None
    index: tuple[int, ...] | None = None


class ArchSampler(nn.Module):
    """Turns the supernet's α into the mixing weights of one forward pass.

    Subclasses may own parameters (e.g. a covariance factor); those count as architecture
    parameters and are optimised with α.
    """

    def forward(self, alpha: torch.Tensor, reduction: bool) -> CellWeights:  # noqa: D102
        return CellWeights(ops=torch.softmax(alpha, dim=-1))

    def derivation_weights(self, alpha: torch.Tensor, reduction: bool) -> torch.Tensor:
        """(edges × ops) weights that rank ops and edges when deriving the genotype."""
        return torch.softmax(alpha.detach(), dim=-1)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Where the search's schedule is (0-based ``epoch`` of ``total_epochs``); the search
        step says it before every forward pass (:func:`robustnas.search.architect.
        announce_epoch`). Nothing by default; GDAS anneals its temperature by it."""
