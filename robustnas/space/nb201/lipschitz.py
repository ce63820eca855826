"""Lipschitz upper bounds of NAS-Bench-201 models, composed like the DARTS ones
(:mod:`robustnas.evaluation.lipschitz` supplies the per-layer bounds).

A cell node sums all its incoming edges, so with ``L_i`` the bound of node ``i`` w.r.t. the
network input, node ``j`` has ``L_j ≤ Σ_{i<j} L(op_ij) · L_i`` and the cell output is node 3
(no concatenation). For the supernet an edge is ``Σ_o |w_o| L(o)`` with the current mixing
weights. A residual block has ``L ≤ L(shortcut) + L(conv_b) · L(conv_a)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustnas.space.nb201.blocks import ResNetBasicBlock
from robustnas.space.nb201.cell import NB201Cell
from robustnas.space.nb201.genotype import EDGES, NUM_NODES
from robustnas.space.nb201.ops import Identity, Zero


def _op(bounder: Any, op: nn.Module) -> float:
    if isinstance(op, Zero):
        return 0.0
    if isinstance(op, Identity):
        return 1.0
    return float(bounder.module(op))


def cell_bound(edge_bounds: list[float], l_in: float) -> float:
    """Bound of a cell's output given its 6 edge bounds and its input's bound ``l_in``."""
    nodes = [l_in]
    for target in range(1, NUM_NODES):
        nodes.append(sum(edge_bounds[k] * nodes[src]
                         for k, (src, dst) in enumerate(EDGES) if dst == target))
    return nodes[-1]


def nb201_lipschitz(model: nn.Module, bounder: Any) -> float:
    """Bound of an :class:`NB201Network` or :class:`NB201SuperNet` (eval mode)."""
    from robustnas.space.nb201.supernet import NB201SearchCell

    weights = None
    if hasattr(model, "mixing_weights"):
        with torch.no_grad():
            weights = model.mixing_weights()["cell"]
    lip = bounder.module(model.normalize) * bounder.module(model.stem)
    for cell in model.cells:
        if isinstance(cell, ResNetBasicBlock):
            short = 1.0 if cell.downsample is None else bounder.module(cell.downsample)
            lip = (short + bounder.module(cell.conv_b) * bounder.module(cell.conv_a)) * lip
        elif isinstance(cell, NB201Cell):
            lip = cell_bound([_op(bounder, op) for op in cell.edges], lip)
        elif isinstance(cell, NB201SearchCell):
            assert weights is not None
            w = weights.ops.detach().abs()
            beta = None if weights.edges is None else weights.edges.detach().abs()
            bounds = []
            for k, mixed in enumerate(cell.edges):
                edge = sum(float(w[k, o]) * _op(bounder, op) for o, op in enumerate(mixed.ops)
                           if float(w[k, o]) != 0.0)
                bounds.append(edge * (1.0 if beta is None else float(beta[k])))
            lip = cell_bound(bounds, lip)
        else:
            raise TypeError(f"unexpected layer {type(cell).__name__}")
    return (lip * bounder.module(model.lastact) * bounder.module(model.global_pooling)
            * bounder.module(model.classifier))
