"""Lipschitz upper bounds of NAS-Bench-201 models, composed like the DARTS ones from
per-layer bounds ``bound(module)`` (:meth:`robustnas.lipschitz.LayerBounder.module`; the
``none`` and ``skip_connect`` operations bound themselves, :mod:`.ops`).

A cell node sums all its incoming edges, so with ``L_i`` the bound of node ``i`` w.r.t. the
network input, node ``j`` has ``L_j ≤ Σ_{i<j} L(op_ij) · L_i`` and the cell output is node 3
(no concatenation). For the supernet an edge is ``Σ_o |w_o| L(o)`` with the current mixing
weights (a partial-channel edge: the larger of that and its bypass's,
:func:`robustnas.space.partial_channels.mixed_edge_bound`). A residual block has
``L ≤ L(shortcut) + L(conv_b) · L(conv_a)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robustnas.space.arch_sampler import CellWeights
from robustnas.space.nb201.blocks import ResNetBasicBlock
from robustnas.space.nb201.genotype import EDGES, NUM_NODES
from robustnas.space.partial_channels import mixed_edge_bound

# The models are typed nn.Module: network.py and supernet.py import this module for their
# lipschitz_bound methods, so importing them here (even for types) would close a circle.
Bound = Callable[[nn.Module], float]


def cell_bound(edge_bounds: list[float], l_in: float) -> float:
    """Bound of a cell's output given its 6 edge bounds and its input's bound ``l_in``."""
    nodes = [l_in]
    for target in range(1, NUM_NODES):
        nodes.append(sum(edge_bounds[k] * nodes[src]
                         for k, (src, dst) in enumerate(EDGES) if dst == target))
    return nodes[-1]


def residual_bound(block: ResNetBasicBlock, bound: Bound) -> float:
    """Bound of a residual block: its shortcut's plus its two convolutions' product."""
    short = 1.0 if block.downsample is None else bound(block.downsample)
    return short + bound(block.conv_b) * bound(block.conv_a)


def mixed_edge_bounds(cell: nn.Module, weights: CellWeights, bound: Bound) -> list[float]:
    """The 6 edge bounds of a :class:`~.supernet.NB201SearchCell` at mixing weights ``weights``."""
    beta = None if weights.edges is None else weights.edges.detach().abs()
    bounds = []
    for k, mixed in enumerate(cell.edges):
        edge = mixed_edge_bound(mixed, weights.ops[k], bound)
        bounds.append(edge * (1.0 if beta is None else float(beta[k])))
    return bounds


def _stack_bound(model: nn.Module, bound: Bound,
                 edge_bounds: Callable[[nn.Module], list[float]]) -> float:
    """Stem, cells (``edge_bounds(cell)``) and residual blocks, head."""
    lip = bound(model.normalize) * bound(model.stem)
    for cell in model.cells:
        if isinstance(cell, ResNetBasicBlock):
            lip = residual_bound(cell, bound) * lip
        else:
            lip = cell_bound(edge_bounds(cell), lip)
    return (lip * bound(model.lastact) * bound(model.global_pooling)
            * bound(model.classifier))


def network_bound(net: nn.Module, bound: Bound) -> float:
    """Bound of an :class:`~.network.NB201Network`'s logits (eval mode)."""
    return _stack_bound(net, bound, lambda cell: [bound(op) for op in cell.edges])


def supernet_bound(net: nn.Module, bound: Bound) -> float:
    """Bound of an :class:`~.supernet.NB201SuperNet`'s logits at one draw of its mixing weights."""
    with torch.no_grad():
        weights = net.mixing_weights()["cell"]
    return _stack_bound(net, bound, lambda cell: mixed_edge_bounds(cell, weights, bound))
