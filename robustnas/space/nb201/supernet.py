"""The NAS-Bench-201 search supernet: one α (6 edges × 5 ops) shared by every cell.

As in NAS-Bench-201's DARTS search code: mixed operations in the cells use batch norm with
``affine=False, track_running_stats=False`` (batch statistics in training *and* evaluation);
the stem, the residual blocks and the head are as in the discrete network. We follow the
paper-era reference code: the convolutions of ``nor_conv`` have no bias even when the BN is
not affine (later versions of the reference add a bias then).

The supernet offers the interface the search loop uses for any space: :meth:`weights`,
:meth:`arch_parameters`, :meth:`set_arch_sampler`, :meth:`alpha_softmax`,
:meth:`genotype` (argmax operation per edge, ``none`` allowed) and :meth:`decisiveness`.
Its relaxation (:mod:`robustnas.space.relaxations`, given at construction or with
:meth:`NB201SuperNet.set_relaxation`) works as on DARTS' supernet: PC-DARTS' partial
channels wrap each mixed op (all edges are stride 1, so nothing is pooled) and its β
weighs each node's incoming edges; GDAS evaluates one operation per edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from robustnas.errors import UsageError
from robustnas.space.arch_sampler import ArchSampler, CellWeights
from robustnas.space.nb201.blocks import ResNetBasicBlock
from robustnas.space.nb201.genotype import EDGES, NUM_NODES, NB201Genotype
from robustnas.space.nb201.lipschitz import supernet_bound
from robustnas.space.nb201.network import stage_layout
from robustnas.space.nb201.ops import NB201_OPS, make_nb201_op
from robustnas.space.normalize import Normalize, channel_stats
from robustnas.space.partial_channels import PartialChannels
from robustnas.space.relaxations import Relaxation, make_relaxation


class NB201MixedOp(nn.Module):
    """Σ_o w_o · o(x) over the five operations of one edge (``index``: that one only,
    ``w_index · op_index(x)``, a single-path pass)."""

    def __init__(self, C: int, primitives: Sequence[str]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(make_nb201_op(name, C, affine=False, track_running_stats=False)
                                 for name in primitives)

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                index: int | None = None) -> torch.Tensor:
        if index is not None:
            return weights[index] * self.ops[index](x)
        return sum(w * op(x) for w, op in zip(weights, self.ops))  # type: ignore[return-value]


class NB201SearchCell(nn.Module):
    """Node j = Σ_{i<j} [β_ij ·] MixedOp_ij(node i); output node 3."""

    def __init__(self, C: int, primitives: Sequence[str], partial: int = 1) -> None:
        super().__init__()
        self.C = C
        self.primitives = tuple(primitives)
        self.partial = partial
        self.edges = self.build_edges(partial)

    def build_edges(self, partial: int) -> nn.ModuleList:
        """Mixed edges; ``partial`` > 1: PC-DARTS' partial-channel edges on ``C/partial``."""
        if partial > 1:
            return nn.ModuleList(PartialChannels(NB201MixedOp(self.C // partial,
                                                              self.primitives), partial, 1)
                                 for _ in EDGES)
        return nn.ModuleList(NB201MixedOp(self.C, self.primitives) for _ in EDGES)

    def use_partial_channels(self, k: int) -> None:
        """Rebuild the edges with ``C/k`` channels through their mixed ops (new weights)."""
        if k != self.partial:
            self.partial, self.edges = k, self.build_edges(k)

    def forward(self, x: torch.Tensor, weights: CellWeights) -> torch.Tensor:
        nodes = [x]
        for target in range(1, NUM_NODES):
            terms = []
            for k, (src, dst) in enumerate(EDGES):
                if dst != target:
                    continue
                out = self.edges[k](nodes[src], weights.ops[k]) if weights.index is None \
                    else self.edges[k](nodes[src], weights.ops[k], weights.index[k])
                if weights.edges is not None:
                    out = weights.edges[k] * out
                terms.append(out)
            nodes.append(sum(terms))  # type: ignore[arg-type]
        return nodes[-1]


class NB201SuperNet(nn.Module):
    """The NAS-Bench-201 search network with a single α of shape (6, 5)."""

    payload_kind = "nb201-supernet"
    space = "nb201"

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, in_channels: int = 3,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 primitives: Sequence[str] = NB201_OPS,
                 relaxation: str | Relaxation | None = None,
                 relaxation_options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        mean, std = channel_stats(in_channels, mean, std)
        relax = make_relaxation(relaxation, relaxation_options)
        relax.check_channels(C)
        self.config = dict(C=C, N=N, num_classes=num_classes, in_channels=in_channels,
                           mean=list(mean), std=list(std), primitives=list(primitives),
                           **relax.to_arch())
        self.primitives = tuple(primitives)
        self.normalize = Normalize(mean, std)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C))
        self.cells = nn.ModuleList()
        C_prev = C
        for channels, residual in stage_layout(C, N):
            self.cells.append(ResNetBasicBlock(C_prev, channels, 2) if residual
                              else NB201SearchCell(channels, self.primitives,
                                                   partial=relax.partial_channels))
            C_prev = channels
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(self.primitives)))
        self.relaxation = relax
        self.arch_sampler: ArchSampler = self._relaxation_sampler(relax)
        #: Whether the arch sampler is the relaxation's (not a regulariser's).
        self._sampler_of_relaxation = True

    # -- parameters ---------------------------------------------------------------------
    def payload_arch(self) -> dict[str, Any]:
        """Constructor arguments (for checkpoints)."""
        return dict(self.config)

    @staticmethod
    def _is_arch(name: str) -> bool:
        return name == "alpha" or name.startswith("arch_sampler.")

    def named_weights(self) -> list[tuple[str, nn.Parameter]]:
        """The network weights w with their names."""
        return [(n, p) for n, p in self.named_parameters() if not self._is_arch(n)]

    def weights(self) -> list[nn.Parameter]:
        """The network weights w."""
        return [p for _, p in self.named_weights()]

    def named_arch_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """α and the arch sampler's parameters, with their names."""
        return [(n, p) for n, p in self.named_parameters() if self._is_arch(n)]

    def arch_parameters(self) -> list[nn.Parameter]:
        """α and the arch sampler's parameters."""
        return [p for _, p in self.named_arch_parameters()]

    def set_arch_sampler(self, sampler: ArchSampler) -> None:
        """Replace how α becomes mixing weights (softmax by default); refused (UsageError)
        when the relaxation samples α itself (PC-DARTS' β, GDAS)."""
        if not self.relaxation.replaceable_sampler:
            raise UsageError(f"relaxation {self.relaxation.name} makes the mixing weights "
                             f"itself; another arch sampler cannot replace its own")
        self.arch_sampler = sampler.to(self.alpha.device)
        self._sampler_of_relaxation = False

    # -- relaxation ---------------------------------------------------------------------
    def _relaxation_sampler(self, relaxation: Relaxation) -> ArchSampler:
        # EDGES are numbered target node by target node: nodes 1, 2, 3 have 1, 2, 3 inputs.
        sizes = tuple(sum(1 for _, dst in EDGES if dst == node) for node in range(1, NUM_NODES))
        return relaxation.sampler(sizes, len(self.primitives), ("cell",))

    def set_relaxation(self, relaxation: str | Relaxation | None,
                       options: Mapping[str, Any] | None = None) -> None:
        """Make the supernet use ``relaxation``; as
        :meth:`robustnas.space.darts.supernet.SuperNet.set_relaxation` (the same one again
        changes nothing; partial channels rebuild the edges; refused over a regulariser's
        sampler)."""
        new = make_relaxation(relaxation, options)
        if new == self.relaxation:
            return
        if not self._sampler_of_relaxation:
            raise UsageError(f"relaxation {new.name}: a regulariser's arch sampler is installed "
                             f"on this supernet; the relaxation would discard it")
        new.check_channels(int(self.config["C"]))
        like = {"device": self.alpha.device, "dtype": self.alpha.dtype}
        for cell in self.cells:
            if isinstance(cell, NB201SearchCell) and cell.partial != new.partial_channels:
                cell.use_partial_channels(new.partial_channels)
                cell.edges.to(**like).train(self.training)
        self.arch_sampler = self._relaxation_sampler(new).to(**like).train(self.training)
        self.relaxation = new
        self.config.update(new.to_arch())

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Where the search's schedule is (GDAS anneals its temperature by it)."""
        self.arch_sampler.set_epoch(epoch, total_epochs)

    def mixing_weights(self) -> dict[str, CellWeights]:
        """One sample of the mixing weights, shared by every cell."""
        return {"cell": self.arch_sampler(self.alpha, False)}

    def lipschitz_bound(self, bound: Callable[[nn.Module], float]) -> float:
        """Upper bound on the L2 Lipschitz constant of the logits at one draw of the mixing
        weights (eval mode; :mod:`robustnas.space.nb201.lipschitz`)."""
        return supernet_bound(self, bound)

    # -- forward ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.mixing_weights()["cell"]
        h = self.stem(self.normalize(x))
        for cell in self.cells:
            h = cell(h, weights) if isinstance(cell, NB201SearchCell) else cell(h)
        h = self.lastact(h)
        return self.classifier(self.global_pooling(h).flatten(1))

    # -- derivation ---------------------------------------------------------------------
    def alpha_softmax(self) -> dict[str, torch.Tensor]:
        """softmax(α), detached, for logging."""
        return {"cell": torch.softmax(self.alpha.detach(), dim=-1).cpu()}

    def derivation_weights(self) -> torch.Tensor:
        """(edges × ops) weights the derivation ranks (softmax(α) or the sampler's)."""
        return self.arch_sampler.derivation_weights(self.alpha, False).detach().cpu()

    def genotype(self, provenance: dict | None = None) -> NB201Genotype:
        """The argmax operation of every edge (``none`` allowed; ties to the first op)."""
        w = self.derivation_weights()
        ops = tuple(self.primitives[int(torch.argmax(row))] for row in w)
        return NB201Genotype(ops, dict(provenance or {}))

    def decisiveness(self) -> Any:
        """How clearly α separates the chosen op from the runner-up on each edge."""
        from robustnas.space.decisiveness import CellDecisiveness, Decisiveness

        w = self.derivation_weights().double()
        k = w.shape[1]
        w = w / w.sum(dim=1).mean().clamp_min(1e-12)
        p = self.alpha_softmax()["cell"].double()
        ent = -(p * p.clamp_min(1e-30).log()).sum(dim=1) / torch.log(torch.tensor(float(k)))
        top2 = w.topk(2, dim=1).values
        margins = [float(a - b) * k for a, b in top2.tolist()]
        return Decisiveness({"cell": CellDecisiveness(float(ent.mean()), margins, [])}, k)
