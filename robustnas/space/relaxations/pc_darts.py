"""``pc-darts`` (Xu et al., "PC-DARTS: Partial Channel Connections for Memory-Efficient
Architecture Search", ICLR 2020).

**Partial channels.** On every edge only the first ``C/K`` channels go through the mixed
operation (built on ``C/K`` channels), the other channels bypass it (a 2×2 max pool on
stride-2 edges), and a channel shuffle with ``K`` groups follows
(:mod:`robustnas.space.partial_channels`). ``k`` = 4 as in the paper's CIFAR-10 search
(their code hard-codes it). The operations' activations shrink about K-fold, which is the
method's point: memory for a larger batch.

**Edge normalisation.** Each input edge ``(i, j)`` has an architecture parameter β_ij; node
``j`` sums ``softmax_i(β_·j)_i · edge_ij(x_i)`` over its incoming edges (the softmax over
the node's in-edges; the bypass is scaled with the edge). β is initialised as
``1e-3·N(0, 1)`` like α and optimised with α by the α optimiser (it is an ``arch_sampler.``
parameter of the supernet). ``edge_normalization: false`` leaves β out (the paper's
ablation).

**Derivation** ranks by α·β, as the paper and its code do: the op of an edge is the argmax
of softmax(α) (β does not change it), and node j keeps the two inputs whose best
non-``none`` softmax(α)·β̂ is largest. The edge weights stabilise that choice against the
channel sampling, which is why the paper introduced them.

**NAS-Bench-201.** PC-DARTS was published on DARTS' space only. Here the same ``k`` and
β apply to NB201's supernet: each of its six edges sends ``C/k`` channels through the five
operations and shuffles; all its edges are stride 1, so the bypass is never pooled;
β is normalised over each node's 1, 2, 3 in-edges (node 1's single β is always 1). NB201's
derivation keeps every edge (argmax op per edge), so β re-weights edges during the search
but cannot change the derived cell. None of this is in the original.

**With the rest of the search.** First order is what the paper uses (its code's default).
Second order works (channels are sliced deterministically, so the unrolled and shifted
passes see one network; β gets its gradient like α) and costs what DARTS' does. AdvRush,
β-DARTS and the Jacobian penalty work unchanged (differentiable functions of the same
forward; β-DARTS decays α, not β), and so does SDARTS (it perturbs the operation weights,
not β). The Lipschitz regulariser is refused: its log-normal sampler would replace β and
its per-operation bounds are of whole-width operations, not of partial-channel edges. DrNAS'
Dirichlet sampler would replace β too: refused, unless ``edge_normalization: false`` (then
it mixes the partial-channel edges' operations, β-free). ``C`` must be a multiple of ``k``
(every cell width is then one).

Other PC-DARTS settings are search settings, not part of the relaxation; the paper's are
batch 256, w_lr 0.1, arch_lr 6e-4, 15 warm-up epochs of 50: pass them as ``batch_size``,
``w_lr``, ``arch_lr`` and ``warmup_epochs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from robustnas.errors import UsageError
from robustnas.options import option
from robustnas.space.arch_sampler import ArchSampler, CellWeights
from robustnas.space.relaxations.base import RELAXATIONS, Relaxation


@dataclass(frozen=True)
class PCDartsOptions:
    """Options of ``pc-darts`` (defaults: the paper's CIFAR-10 search)."""

    k: int = option(4, low=1, flag="",
                    help="1/k of an edge's channels go through its operations")
    edge_normalization: bool = option(True, flag="",
                                      help="β per input edge, softmax over a node's in-edges")


class EdgeNormalizedSampler(ArchSampler):
    """softmax(α) per edge and softmax(β) over each node's incoming edges, per cell type."""

    def __init__(self, node_sizes: Sequence[int], cell_types: Sequence[str]) -> None:
        super().__init__()
        self.cell_types = tuple(cell_types)
        self.node_ranges: list[tuple[int, int]] = []
        start = 0
        for size in node_sizes:
            self.node_ranges.append((start, start + int(size)))
            start += int(size)
        for kind in self.cell_types:
            self.register_parameter(f"beta_{kind}", nn.Parameter(1e-3 * torch.randn(start)))

    def beta(self, reduction: bool) -> nn.Parameter:
        """β of the cell type the supernet calls ``reduction`` (raw, before the softmax)."""
        return getattr(self, f"beta_{self.cell_types[int(reduction)]}")

    def edge_weights(self, reduction: bool) -> torch.Tensor:
        """β̂: β softmax-normalised over each node's incoming edges (edges,)."""
        beta = self.beta(reduction)
        return torch.cat([torch.softmax(beta[a:b], dim=0) for a, b in self.node_ranges])

    def forward(self, alpha: torch.Tensor, reduction: bool) -> CellWeights:  # noqa: D102
        return CellWeights(ops=torch.softmax(alpha, dim=-1), edges=self.edge_weights(reduction))

    def derivation_weights(self, alpha: torch.Tensor, reduction: bool) -> torch.Tensor:
        """softmax(α) · β̂ per edge: edges are ranked by the product (PC-DARTS)."""
        with torch.no_grad():
            return torch.softmax(alpha, dim=-1) * self.edge_weights(reduction)[:, None]


@RELAXATIONS.register("pc-darts")
class PartialChannelRelaxation(Relaxation):
    """Partial channel connections and edge normalisation (see the module docstring)."""

    name = "pc-darts"
    options_type = PCDartsOptions
    refused_regularizers = {
        "lipschitz": "its log-normal sampler would replace PC-DARTS' edge weights β and its "
                     "bound composes whole-width operations, not partial-channel edges"}

    @property
    def partial_channels(self) -> int:  # noqa: D102
        return int(self.options.k)

    @property
    def replaceable_sampler(self) -> bool:
        """Only without β: the sampler is then DARTS' softmax."""
        return not self.options.edge_normalization

    def regularizer_refusal(self, name: str) -> str | None:  # noqa: D102
        if name == "drnas" and self.options.edge_normalization:
            return ("its Dirichlet sampler would replace PC-DARTS' edge weights β (partial "
                    "channels with Dirichlet weights: relaxation_options {edge_normalization: "
                    "false})")
        return super().regularizer_refusal(name)

    def sampler(self, node_sizes: Sequence[int], num_ops: int,
                cell_types: Sequence[str]) -> ArchSampler:  # noqa: D102
        if not self.options.edge_normalization:
            return ArchSampler()
        return EdgeNormalizedSampler(node_sizes, cell_types)

    def check_channels(self, C: int) -> None:  # noqa: D102
        k = self.options.k
        if C % k:
            raise UsageError(f"relaxation pc-darts: C (--channels) must be a multiple of "
                             f"k = {k} (C/k channels of each edge pass through its "
                             f"operations), got {C}")
