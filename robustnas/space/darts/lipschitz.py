"""Lipschitz upper bounds of DARTS networks and supernets, composed from per-layer bounds.

``bound(module)`` bounds one layer (:meth:`robustnas.lipschitz.LayerBounder.module`; the
DARTS operations bound themselves, :mod:`.ops`). With ``L_i`` the bound of state ``i``
w.r.t. the network input, a node ``Σ_k op_k(state_{i_k})`` has ``Σ_k L(op_k) L_{i_k}``
(sum over paths), and the cell output, a channel concatenation, has
``sqrt(Σ_{i ∈ concat} L_i²)``. A supernet's mixed edge ``Σ_o w_o op_o`` has
``Σ_o |w_o| L(op_o)`` (times ``|β|`` when edges are weighted), at the supernet's current
mixing weights; a partial-channel edge (PC-DARTS) the larger of that and its bypass's
(:func:`robustnas.space.partial_channels.mixed_edge_bound`).

The bound is for the eval-mode network (batch norm with running statistics, no drop-path,
no auxiliary head). It is typically very loose for deep networks; it is meant for
comparisons between architectures, as in the Lipschitz-constrained NAS literature.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from robustnas.space.partial_channels import mixed_edge_bound

# The models are typed nn.Module: network.py and supernet.py import this module for their
# lipschitz_bound methods, so importing them here (even for types) would close a circle.
Bound = Callable[[nn.Module], float]


def cell_bound(cell: nn.Module, l0: float, l1: float, bound: Bound) -> float:
    """Bound of a discrete :class:`~.network.Cell`'s output given its two inputs' bounds
    ``l0``, ``l1``."""
    states = [bound(cell.preprocess0) * l0, bound(cell.preprocess1) * l1]
    for node in range(cell.steps):
        states.append(sum(bound(cell.ops[k]) * states[cell.indices[k]]
                          for k in (2 * node, 2 * node + 1)))
    return math.sqrt(sum(states[i] ** 2 for i in cell.concat))


def search_cell_bound(cell: nn.Module, l0: float, l1: float, ops: torch.Tensor,
                      edges: torch.Tensor | None, bound: Bound) -> float:
    """Bound of a :class:`~.supernet.SearchCell`'s output at mixing weights ``ops``
    (edges × ops) and edge weights ``edges`` (None: unweighted)."""
    states = [bound(cell.preprocess0) * l0, bound(cell.preprocess1) * l1]
    offset = 0
    for _ in range(cell.steps):
        total = 0.0
        for j, lj in enumerate(states):
            edge = mixed_edge_bound(cell.edges[offset + j], ops[offset + j], bound)
            if edges is not None:
                edge *= float(edges[offset + j].abs())
            total += edge * lj
        offset += len(states)
        states.append(total)
    return math.sqrt(sum(s ** 2 for s in states[-cell.multiplier:]))


def features_bound(net: nn.Module, bound: Bound) -> float:
    """Bound of a discrete :class:`~.network.Network`'s last cell output (before global pooling)."""
    l0 = l1 = bound(net.normalize) * bound(net.stem)
    for cell in net.cells:
        l0, l1 = l1, cell_bound(cell, l0, l1, bound)
    return l1


def network_bound(net: nn.Module, bound: Bound) -> float:
    """Bound of a discrete network's logits."""
    return features_bound(net, bound) * bound(net.global_pooling) * bound(net.classifier)


def supernet_bound(net: nn.Module, bound: Bound) -> float:
    """Bound of a :class:`~.supernet.SuperNet`'s logits at one draw of its mixing weights
    (the median in eval mode for the log-normal sampler, softmax(α) for the default one)."""
    l0 = l1 = bound(net.normalize) * bound(net.stem)
    with torch.no_grad():
        weights = net.mixing_weights()
    for cell in net.cells:
        w = weights["reduce" if cell.reduction else "normal"]
        out = search_cell_bound(cell, l0, l1, w.ops.detach(),
                                None if w.edges is None else w.edges.detach(), bound)
        l0, l1 = l1, out
    return l1 * bound(net.global_pooling) * bound(net.classifier)
