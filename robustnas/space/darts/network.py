"""The discrete network built from a genotype (DARTS' NetworkCIFAR layout)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from robustnas.space.darts.common import preprocess_inputs, reduction_layers, stem
from robustnas.space.darts.genotype import Edge, Genotype
from robustnas.space.darts.lipschitz import features_bound, network_bound
from robustnas.space.darts.ops import Identity, make_op
from robustnas.space.normalize import Normalize, channel_stats


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    # One full-size multiply: the rescaling is applied to the (N, 1, 1, 1) mask.
    return x * mask.div_(keep)


class Cell(nn.Module):
    """A discrete cell: 2 chosen edges per node, output = concat of the chosen states."""

    def __init__(self, edges: Sequence[Edge], concat: Sequence[int], C_pp: int, C_p: int,
                 C: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = preprocess_inputs(C_pp, C_p, C, reduction_prev,
                                                               affine=True)
        self.steps = len(edges) // 2
        self.concat = tuple(concat)
        self.multiplier = len(concat)
        self.indices = tuple(idx for _, idx in edges)
        self.ops = nn.ModuleList(
            make_op(name, C, 2 if reduction and idx < 2 else 1, affine=True)
            for name, idx in edges)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.steps):
            total = None
            for k in (2 * node, 2 * node + 1):
                op = self.ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier.

    DARTS pools its 8×8 input (32×32 images) with a 5×5 window at stride 3 to 2×2 before a
    2×2 convolution. Inputs where that window does not give 2×2 (e.g. 7×7 from 28×28 images,
    16×16 from 64×64, or smaller than 5×5) are average-pooled adaptively to 2×2 instead.
    """

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(x)
        if all(size >= 5 and (size - 5) // 3 + 1 == 2 for size in x.shape[-2:]):
            x = nn.functional.avg_pool2d(x, 5, stride=3, padding=0, count_include_pad=False)
        else:  # other sizes: pool to the 2×2 the head expects
            x = nn.functional.adaptive_avg_pool2d(x, 2)
        x = self.features[1:](x)
        return self.classifier(x.flatten(1))


class Network(nn.Module):
    """A discrete DARTS network. ``forward`` returns logits, or ``(logits, aux_logits)``
    in training mode when the auxiliary head is enabled."""

    space = "darts"
    payload_kind = "network"

    def __init__(self, genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                 auxiliary: bool = False, stem_multiplier: int = 3, in_channels: int = 3,
                 mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__()
        mean, std = channel_stats(in_channels, mean, std)
        self.genotype = genotype
        self.config = dict(C=C, num_classes=num_classes, layers=layers, auxiliary=auxiliary,
                           stem_multiplier=stem_multiplier, in_channels=in_channels,
                           mean=list(mean), std=list(std))
        self.drop_path_prob = 0.0
        self.normalize = Normalize(mean, std)
        C_curr = stem_multiplier * C
        self.stem = stem(in_channels, C_curr)
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        self.aux_index = 2 * layers // 3
        reduction_prev = False
        C_aux = None
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                C_curr *= 2
                edges, concat = genotype.reduce, genotype.reduce_concat
            else:
                edges, concat = genotype.normal, genotype.normal_concat
            cell = Cell(edges, concat, C_pp, C_p, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cell.multiplier * C_curr
            if i == self.aux_index:
                C_aux = C_p
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes) if auxiliary and C_aux else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    def describe(self) -> str:
        """The genotype's cells in words."""
        return self.genotype.describe()

    def lipschitz_features(self, bound: Callable[[nn.Module], float]) -> float:
        """Upper bound on the L2 Lipschitz constant of :meth:`forward_features` (eval mode);
        ``bound(module)`` bounds one layer (:mod:`robustnas.space.darts.lipschitz`)."""
        return features_bound(self, bound)

    def lipschitz_bound(self, bound: Callable[[nn.Module], float]) -> float:
        """Upper bound on the L2 Lipschitz constant of the logits (eval mode)."""
        return network_bound(self, bound)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last cell's output (before global pooling); used by feature ensembles."""
        s0 = s1 = self.stem(self.normalize(x))
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
        return s1

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(self.normalize(x))
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        if aux_logits is not None:
            return logits, aux_logits
        return logits
