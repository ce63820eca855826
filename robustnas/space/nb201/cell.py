"""The discrete NAS-Bench-201 cell: every node sums all its incoming edges; output = node 3."""

from __future__ import annotations

import torch
from torch import nn

from robustnas.space.nb201.genotype import EDGES, NUM_NODES, NB201Genotype
from robustnas.space.nb201.ops import make_nb201_op


class NB201Cell(nn.Module):
    """Node 0 is the input; node ``j`` = Σ_{i<j} op_{i→j}(node i). Every edge is built,
    ``none`` included (a zero op without weights), as in NAS-Bench-201's ``InferCell``."""

    def __init__(self, genotype: NB201Genotype, C: int, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.genotype = genotype
        self.edges = nn.ModuleList(make_nb201_op(op, C, affine, track_running_stats)
                                   for op in genotype.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in range(1, NUM_NODES):
            total = None
            for k, (src, dst) in enumerate(EDGES):
                if dst == target:
                    h = self.edges[k](nodes[src])
                    total = h if total is None else total + h
            nodes.append(total)  # type: ignore[arg-type]
        return nodes[-1]
