"""The picture of a NAS-Bench-201 cell: the 4-node DAG with one labelled arrow per edge.

Nodes 0..3 sit on a line; edges between neighbours are straight, the two edges that skip one
node arc above the line and the 0→3 edge arcs below it, so no two edges or labels overlap.
``none`` edges are drawn thin, grey and dashed (the edge exists but carries nothing).
Drawing uses the shared pieces of :mod:`robustnas.viz.graph` (matplotlib on an Agg canvas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robustnas.space.nb201.genotype import NUM_NODES, NB201Genotype, load_nb201_genotype
from robustnas.viz._render import figure_array, write_figure
from robustnas.viz.graph import NODE_FILL, curved_arrow, edge_label, node_circle, picture_axes

NB201_OP_COLORS: dict[str, str] = {
    "none": "#9e9e9e",
    "skip_connect": "#c2393f",
    "nor_conv_1x1": "#e07b2f",
    "nor_conv_3x3": "#3d9a50",
    "avg_pool_3x3": "#3aa0c4",
}
"""Edge colour per operation."""

_GAP = 2.6      # data units between nodes
_RADIUS = 0.32
_INCH = 0.8
_FONT = 7.5
_ROLE = {0: "input", NUM_NODES - 1: "output"}


def _bend(src: int, dst: int) -> float:
    """Control-point offset (data units, + is up) of the edge src→dst."""
    span = dst - src
    if span == 1:
        return 0.0
    if span == 2:
        return 1.1
    return -1.6


def _build_figure(genotype: NB201Genotype, title: str | None) -> Any:
    pos = {n: np.array([n * _GAP, 0.0]) for n in range(NUM_NODES)}
    lo = np.array([-_RADIUS - 0.3, -1.6 / 2 - 0.6])
    hi = np.array([(NUM_NODES - 1) * _GAP + _RADIUS + 0.3, 1.1 / 2 + 0.6])
    fig, ax = picture_axes(lo, hi, _INCH, title)
    for k, (op, src, dst) in enumerate(genotype.edges()):
        a, b = pos[src], pos[dst]
        control = (a + b) / 2 + np.array([0.0, _bend(src, dst)])
        # Trim the curve at the node circles: move the ends towards the control point.
        start = a + (control - a) / np.linalg.norm(control - a) * (_RADIUS + 0.03)
        end = b + (control - b) / np.linalg.norm(control - b) * (_RADIUS + 0.06)
        color = NB201_OP_COLORS[op]
        is_none = op == "none"
        curved_arrow(ax, start, control, end, color, linewidth=0.8 if is_none else 1.5,
                     dashed=is_none, gid=f"edge-{k}")
        mid = 0.25 * start + 0.5 * control + 0.25 * end  # the curve at t = 1/2
        edge_label(ax, mid, op, color, fontsize=_FONT, gid=f"label-{k}")
    for n, p in pos.items():
        node_circle(ax, p, _RADIUS, str(n), NODE_FILL[_ROLE.get(n, "node")])
    return fig


def draw_nb201_cell(genotype: NB201Genotype | str, path_stem: str | Path,
                    title: str | None = None) -> list[Path]:
    """Draw the cell to ``<path_stem>.png`` and ``<path_stem>.svg`` (atomic writes)."""
    geno = load_nb201_genotype(genotype)
    return write_figure(_build_figure(geno, title), path_stem)


def nb201_cell_image(genotype: NB201Genotype | str, title: str | None = None,
                     dpi: float = 80) -> np.ndarray:
    """The cell picture as an ``H x W x 3`` uint8 RGB array (e.g. for TensorBoard)."""
    return figure_array(_build_figure(load_nb201_genotype(genotype), title), dpi=dpi)
