"""The DARTS supernet: mixed operations over all candidates, weighted by architecture parameters.

Architecture parameters (α, and anything an :class:`ArchSampler` adds) are kept apart from
the network weights: :meth:`SuperNet.weights` and :meth:`SuperNet.arch_parameters` are
disjoint and together cover :meth:`~torch.nn.Module.parameters`.

How α becomes the mixing weights of a forward pass is decided by the supernet's
*arch sampler* (:mod:`robustnas.space.arch_sampler`). The default is DARTS' softmax; a
regulariser that samples α (the log-normal Lipschitz method) installs its own sampler with
:meth:`SuperNet.set_arch_sampler` instead of special-casing the search loop.

The supernet's *relaxation* (:mod:`robustnas.space.relaxations`: ``darts``, ``pc-darts``,
``gdas``) chooses that sampler and the shape of the edges: PC-DARTS' edges are
:class:`~robustnas.space.partial_channels.PartialChannels` around a mixed op on ``C/K``
channels, GDAS' sampler asks each edge for one operation (``CellWeights.index``). It is
given at construction or with :meth:`SuperNet.set_relaxation`, and recorded in
:attr:`SuperNet.config` (the checkpoint payload's ``arch``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from robustnas.errors import UsageError
from robustnas.space.arch_sampler import ArchSampler, CellWeights
from robustnas.space.darts.common import preprocess_inputs, reduction_layers, stem
from robustnas.space.darts.genotype import Genotype, make_genotype
from robustnas.space.darts.lipschitz import supernet_bound
from robustnas.space.darts.ops import PRIMITIVES, Zero, make_op
from robustnas.space.normalize import Normalize, channel_stats
from robustnas.space.partial_channels import PartialChannels
from robustnas.space.relaxations import Relaxation, make_relaxation


class MixedOp(nn.Module):
    """Weighted sum of all candidate operations on one edge.

    The default evaluation skips the ``none`` operation (its term is exactly zero, and so is
    its weight's gradient through this edge) and accumulates the weighted terms in place
    (one fused multiply-add per operation instead of a multiply, an add and a temporary).
    ``reference = True`` evaluates every operation and sums with Python's ``sum``, as the
    original DARTS code does; both agree to float rounding. With ``index`` (a single-path
    pass, GDAS) only that operation runs: ``weights[index] · op_index(x)``.
    """

    def __init__(self, C: int, stride: int, primitives: Sequence[str]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(make_op(name, C, stride, affine=False) for name in primitives)
        #: indices of the operations whose output is not identically zero
        self.active = tuple(i for i, op in enumerate(self.ops) if not isinstance(op, Zero))
        self.reference = False

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                index: int | None = None) -> torch.Tensor:
        if index is not None:
            return weights[index] * self.ops[index](x)
        if self.reference or not self.active:
            return sum(w * op(x) for w, op in zip(weights, self.ops))  # type: ignore[return-value]
        w = weights.unbind(0)
        first, *rest = self.active
        out = w[first] * self.ops[first](x)
        for i in rest:
            out = out.addcmul_(w[i], self.ops[i](x))
        return out


class SearchCell(nn.Module):
    """A DARTS search cell: two inputs, ``steps`` nodes, every earlier state feeds every node."""

    def __init__(self, steps: int, multiplier: int, C_pp: int, C_p: int, C: int,
                 reduction: bool, reduction_prev: bool, primitives: Sequence[str],
                 partial: int = 1) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        self.preprocess0, self.preprocess1 = preprocess_inputs(C_pp, C_p, C, reduction_prev,
                                                               affine=False)
        self.C = C
        self.primitives = tuple(primitives)
        #: PC-DARTS' K (1: every channel through the mixed ops): :meth:`use_partial_channels`
        self.partial = partial
        self.edges = self.build_edges(partial)
        self.reference = False

    def use_partial_channels(self, k: int) -> None:
        """Rebuild the edges with ``C/k`` channels through their mixed ops (new weights)."""
        if k != self.partial:
            self.partial, self.edges = k, self.build_edges(k)

    def build_edges(self, partial: int) -> nn.ModuleList:
        """The cell's mixed edges; ``partial`` > 1: PC-DARTS' partial-channel edges, each a
        mixed op on ``C / partial`` channels (:mod:`robustnas.space.partial_channels`)."""
        edges = nn.ModuleList()
        for node in range(self.steps):
            for source in range(2 + node):
                stride = 2 if self.reduction and source < 2 else 1
                if partial > 1:
                    edges.append(PartialChannels(
                        MixedOp(self.C // partial, stride, self.primitives), partial, stride))
                else:
                    edges.append(MixedOp(self.C, stride, self.primitives))
        return edges

    def _edge(self, k: int, h: torch.Tensor, w: torch.Tensor, index: tuple[int, ...] | None,
              scale: torch.Tensor | None) -> torch.Tensor:
        out = self.edges[k](h, w) if index is None else self.edges[k](h, w, index[k])
        return out if scale is None else scale * out

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: CellWeights) -> torch.Tensor:
        if self.reference:
            return self._reference_forward(s0, s1, weights)
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        # Edge weights scale whole edges: fold them into the (edges × ops) weights, a few
        # scalars, instead of multiplying every edge's output tensor, unless an edge has
        # more than its operations (PC-DARTS' bypass is scaled too).
        fold = weights.edges is not None and self.partial == 1
        w = weights.ops * weights.edges[:, None] if fold else weights.ops
        rows = w.unbind(0)
        scales = (None,) * len(rows) if fold or weights.edges is None \
            else weights.edges.unbind(0)
        index = weights.index
        offset = 0
        for _ in range(self.steps):
            total = self._edge(offset, states[0], rows[offset], index, scales[offset])
            for j in range(1, len(states)):
                k = offset + j
                total = total.add_(self._edge(k, states[j], rows[k], index, scales[k]))
            offset += len(states)
            states.append(total)
        return torch.cat(states[-self.multiplier:], dim=1)

    def _reference_forward(self, s0: torch.Tensor, s1: torch.Tensor,
                           weights: CellWeights) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            terms = []
            for j, h in enumerate(states):
                out = self._edge(offset + j, h, weights.ops[offset + j], weights.index, None)
                if weights.edges is not None:
                    out = weights.edges[offset + j] * out
                terms.append(out)
            offset += len(states)
            states.append(sum(terms))  # type: ignore[arg-type]
        return torch.cat(states[-self.multiplier:], dim=1)


def num_edges(steps: int) -> int:
    """Edges per cell: node ``i`` has ``i + 2`` inputs."""
    return sum(2 + i for i in range(steps))


class SuperNet(nn.Module):
    """The DARTS search network (CIFAR layout) with α for normal and reduction cells."""

    space = "darts"
    payload_kind = "supernet"

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 8, steps: int = 4,
                 multiplier: int | None = None, stem_multiplier: int = 3,
                 in_channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None,
                 primitives: Sequence[str] = PRIMITIVES,
                 relaxation: str | Relaxation | None = None,
                 relaxation_options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        # A cell concatenates all its intermediate nodes, as the derived genotype's concat
        # does (DARTS: steps = multiplier = 4); another steps needs the matching multiplier.
        multiplier = steps if multiplier is None else multiplier
        mean, std = channel_stats(in_channels, mean, std)
        relax = make_relaxation(relaxation, relaxation_options)
        relax.check_channels(C)
        self.config = dict(C=C, num_classes=num_classes, layers=layers, steps=steps,
                           multiplier=multiplier, stem_multiplier=stem_multiplier,
                           in_channels=in_channels, mean=list(mean), std=list(std),
                           primitives=list(primitives), **relax.to_arch())
        self.primitives = tuple(primitives)
        self.steps = steps
        self.multiplier = multiplier
        self.normalize = Normalize(mean, std)
        C_curr = stem_multiplier * C
        self.stem = stem(in_channels, C_curr)
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                C_curr *= 2
            cell = SearchCell(steps, multiplier, C_pp, C_p, C_curr, reduction, reduction_prev,
                              self.primitives, partial=relax.partial_channels)
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        k, n = num_edges(steps), len(self.primitives)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(k, n))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(k, n))
        self.relaxation = relax
        self.arch_sampler: ArchSampler = self._relaxation_sampler(relax)
        #: Whether the arch sampler is the relaxation's (not a regulariser's).
        self._sampler_of_relaxation = True
        self._parameter_lists: tuple[list, list] | None = None
        self.reference = False

    # -- evaluation path ----------------------------------------------------------------
    def use_reference_path(self, enabled: bool = True) -> SuperNet:
        """Evaluate as the original DARTS code does (the benchmarks' baseline).

        The default path skips the ``none`` operations, accumulates in place, folds edge
        weights into operation weights, runs convolutions in channels_last on CPU and caches
        the parameter lists. The reference path does none of that: every operation, Python
        ``sum``, the caller's memory layout, parameter lists rebuilt on every call. Both
        compute the same function up to float rounding (``tests/test_fast_step.py``).
        """
        self.reference = bool(enabled)
        for module in self.modules():
            if isinstance(module, (MixedOp, SearchCell)):
                module.reference = self.reference
        return self

    # -- parameters -------------------------------------------------------------------
    def _is_arch(self, name: str) -> bool:
        return name.startswith("alpha_") or name.startswith("arch_sampler.")

    def _lists(self) -> tuple[list, list]:
        """(named weights, named arch parameters), cached: walking the ~10k modules of a
        supernet on every step costs milliseconds. The cache is dropped when parameters can
        change identity (:meth:`set_arch_sampler`, ``to()``/``_apply``)."""
        if self.reference or self._parameter_lists is None:
            named = list(self.named_parameters())
            lists = ([(n, p) for n, p in named if not self._is_arch(n)],
                     [(n, p) for n, p in named if self._is_arch(n)])
            if self.reference:
                return lists
            self._parameter_lists = lists
        return self._parameter_lists

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202 (torch's signature)
        self._parameter_lists = None
        return super()._apply(fn, recurse)

    def named_weights(self) -> list[tuple[str, nn.Parameter]]:
        """The network weights w with their names (everything but the architecture)."""
        return list(self._lists()[0])

    def weights(self) -> list[nn.Parameter]:
        """The network weights w."""
        return [p for _, p in self.named_weights()]

    def named_arch_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """α and the arch sampler's parameters, with their names."""
        return list(self._lists()[1])

    def arch_parameters(self) -> list[nn.Parameter]:
        """α and the arch sampler's parameters (optimised on validation batches)."""
        return [p for _, p in self.named_arch_parameters()]

    def set_arch_sampler(self, sampler: ArchSampler) -> None:
        """Replace how α becomes mixing weights (softmax by default); refused (UsageError)
        when the relaxation samples α itself (PC-DARTS' β, GDAS)."""
        if not self.relaxation.replaceable_sampler:
            raise UsageError(f"relaxation {self.relaxation.name} makes the mixing weights "
                             f"itself; another arch sampler cannot replace its own")
        device = self.alpha_normal.device
        self.arch_sampler = sampler.to(device)
        self._sampler_of_relaxation = False
        self._parameter_lists = None

    # -- relaxation -------------------------------------------------------------------
    def _relaxation_sampler(self, relaxation: Relaxation) -> ArchSampler:
        return relaxation.sampler(tuple(node + 2 for node in range(self.steps)),
                                  len(self.primitives), ("normal", "reduce"))

    def set_relaxation(self, relaxation: str | Relaxation | None,
                       options: Mapping[str, Any] | None = None) -> None:
        """Make the supernet use ``relaxation`` (:mod:`robustnas.space.relaxations`).

        The same relaxation again changes nothing (so the default ``darts`` leaves a search
        bit-identical, and a regulariser's sampler in place). Another one installs its arch
        sampler (new architecture parameters, e.g. PC-DARTS' β) and, when its partial
        channels differ, rebuilds every edge (new weights). Call it before optimisers are
        built on the parameters. Refused (UsageError) while a regulariser's sampler is
        installed, which the new relaxation would discard.
        """
        new = make_relaxation(relaxation, options)
        if new == self.relaxation:
            return
        if not self._sampler_of_relaxation:
            raise UsageError(f"relaxation {new.name}: a regulariser's arch sampler is installed "
                             f"on this supernet; the relaxation would discard it")
        new.check_channels(int(self.config["C"]))
        like = {"device": self.alpha_normal.device, "dtype": self.alpha_normal.dtype}
        for cell in self.cells:
            if cell.partial != new.partial_channels:
                cell.use_partial_channels(new.partial_channels)
                cell.edges.to(**like).train(self.training)
        self.use_reference_path(self.reference)  # rebuilt edges take the evaluation path
        self.arch_sampler = self._relaxation_sampler(new).to(**like).train(self.training)
        self.relaxation = new
        self.config.update(new.to_arch())
        self._parameter_lists = None

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Where the search's schedule is (GDAS anneals its temperature by it)."""
        self.arch_sampler.set_epoch(epoch, total_epochs)

    def mixing_weights(self) -> dict[str, CellWeights]:
        """The weights of one forward pass, one sample for each cell type."""
        return {"normal": self.arch_sampler(self.alpha_normal, False),
                "reduce": self.arch_sampler(self.alpha_reduce, True)}

    # -- forward ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.mixing_weights()
        x = self.normalize(x)
        if not self.reference and x.device.type == "cpu" and x.dim() == 4:
            # Measured faster on CPU (pooling especially); the result is the same.
            x = x.contiguous(memory_format=torch.channels_last)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, weights["reduce" if cell.reduction else "normal"])
        out = self.global_pooling(s1)
        return self.classifier(out.flatten(1))

    def lipschitz_bound(self, bound: Callable[[nn.Module], float]) -> float:
        """Upper bound on the L2 Lipschitz constant of the logits at one draw of the mixing
        weights (eval mode; :mod:`robustnas.space.darts.lipschitz`)."""
        return supernet_bound(self, bound)

    # -- derivation -------------------------------------------------------------------
    def alpha_softmax(self) -> dict[str, torch.Tensor]:
        """softmax(α) per cell type, detached, for logging and derivation."""
        return {"normal": torch.softmax(self.alpha_normal.detach(), dim=-1).cpu(),
                "reduce": torch.softmax(self.alpha_reduce.detach(), dim=-1).cpu()}

    def decisiveness(self) -> Any:
        """How decisive the current α is (see :mod:`robustnas.space.decisiveness`)."""
        from robustnas.space.decisiveness import darts_decisiveness

        return darts_decisiveness(self)

    def genotype(self, provenance: dict | None = None) -> Genotype:
        """Derive the discrete genotype: top-2 non-``none`` edges per node (DARTS rule)."""
        probs = {"normal": self.arch_sampler.derivation_weights(self.alpha_normal, False).cpu(),
                 "reduce": self.arch_sampler.derivation_weights(self.alpha_reduce, True).cpu()}
        return make_genotype(derive_cell(probs["normal"], self.primitives, self.steps),
                             derive_cell(probs["reduce"], self.primitives, self.steps),
                             provenance=provenance)


def derive_cell(weights: torch.Tensor, primitives: Sequence[str],
                steps: int) -> list[tuple[str, int]]:
    """Keep, for each node, the 2 inputs whose best non-``none`` op weighs most."""
    none_idx = primitives.index("none") if "none" in primitives else -1
    edges: list[tuple[str, int]] = []
    start = 0
    for node in range(steps):
        n_in = node + 2
        w = weights[start:start + n_in].clone()
        if none_idx >= 0:
            w[:, none_idx] = -float("inf")
        best_w, best_op = w.max(dim=1)
        # Ties break towards the lower input index, deterministically.
        order = sorted(range(n_in), key=lambda j: (-float(best_w[j]), j))[:2]
        for j in order:
            edges.append((primitives[int(best_op[j])], j))
        start += n_in
    return edges
