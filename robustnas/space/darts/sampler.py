"""Uniform random DARTS genotypes (the ``darts`` space's sampler).

Each of the 4 intermediate nodes of a cell takes 2 distinct inputs among its predecessors
(the two cell inputs and the earlier nodes), each through one of the 7 operations other than
``none``; the normal and the reduction cell are drawn independently; both concatenate nodes
2..5. Every architecture is equally likely: the input pair of node ``j`` is uniform over the
``C(j + 2, 2)`` unordered pairs, and each edge's operation is uniform over the 7 operations.
The two edges of a node are stored sorted by input index, so two draws that differ only in
the order of a node's edges (the same network) compare equal and count as duplicates.
"""

from __future__ import annotations

import math
import random
from typing import Any

from robustnas.space.darts.genotype import Edge, Genotype, make_genotype
from robustnas.space.darts.ops import PRIMITIVES

#: The operations a sampled DARTS edge can take (every primitive except ``none``).
DARTS_OPS: tuple[str, ...] = tuple(op for op in PRIMITIVES if op != "none")
#: Intermediate nodes per DARTS cell.
DARTS_STEPS = 4


def draw_cell(rng: random.Random, steps: int = DARTS_STEPS) -> list[Edge]:
    """One uniformly random DARTS cell: per node a uniform unordered pair of distinct
    predecessors, each edge with a uniform non-``none`` operation."""
    edges: list[Edge] = []
    for node in range(steps):
        first, second = sorted(rng.sample(range(node + 2), 2))
        edges.append((rng.choice(DARTS_OPS), first))
        edges.append((rng.choice(DARTS_OPS), second))
    return edges


def darts_cell_count(steps: int = DARTS_STEPS, ops: int = len(DARTS_OPS)) -> int:
    """Distinct DARTS cells: the product over nodes of C(j + 2, 2) input pairs × ops²."""
    return math.prod(math.comb(node + 2, 2) * ops * ops for node in range(steps))


def draw_genotype(rng: random.Random, provenance: dict[str, Any]) -> Genotype:
    """One uniformly random genotype (normal cell first, then reduction cell)."""
    normal = draw_cell(rng)
    reduce = draw_cell(rng)
    concat = list(range(2, 2 + DARTS_STEPS))
    return make_genotype(normal, reduce, concat, concat, provenance=provenance)
