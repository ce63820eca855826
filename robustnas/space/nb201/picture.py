"""The picture of a NAS-Bench-201 cell: the 4-node DAG with one labelled arrow per edge.

Nodes 0..3 sit on a line; edges between neighbours are straight, the two edges that skip one
node arc above the line and the 0→3 edge arcs below it, so no two edges or labels overlap.
``none`` edges are drawn thin, grey and dashed (the edge exists but carries nothing).
Drawing uses matplotlib on an Agg canvas only (see :mod:`robustnas.viz._render`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robustnas.space.nb201.genotype import NUM_NODES, NB201Genotype, load_nb201_genotype
from robustnas.viz._render import figure_array, new_figure, write_figure

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
_FILL = {0: "#d5ecd4", NUM_NODES - 1: "#f3e9b8"}
_NODE_FILL = "#d6e6f5"


def _bend(src: int, dst: int) -> float:
    """Control-point offset (data units, + is up) of the edge src→dst."""
    span = dst - src
    if span == 1:
        return 0.0
    if span == 2:
        return 1.1
    return -1.6


def _build_figure(genotype: NB201Genotype, title: str | None) -> Any:
    from matplotlib.patches import Circle, FancyArrowPatch
    from matplotlib.path import Path as MplPath

    pos = {n: np.array([n * _GAP, 0.0]) for n in range(NUM_NODES)}
    lo = np.array([-_RADIUS - 0.3, -1.6 / 2 - 0.6])
    hi = np.array([(NUM_NODES - 1) * _GAP + _RADIUS + 0.3, 1.1 / 2 + 0.6])
    head = 0.35 if title else 0.0
    width, height = (hi - lo) * _INCH
    fig = new_figure(float(width), float(height) + head)
    ax = fig.add_axes((0.0, 0.0, 1.0, height / (height + head)))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        fig.text(0.5, 1.0 - 0.5 * head / (height + head), title, ha="center", va="center",
                 fontsize=10)
    codes = [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3]
    for k, (op, src, dst) in enumerate(genotype.edges()):
        a, b = pos[src], pos[dst]
        control = (a + b) / 2 + np.array([0.0, _bend(src, dst)])
        # Trim the curve at the node circles: move the ends towards the control point.
        start = a + (control - a) / np.linalg.norm(control - a) * (_RADIUS + 0.03)
        end = b + (control - b) / np.linalg.norm(control - b) * (_RADIUS + 0.06)
        color = NB201_OP_COLORS[op]
        is_none = op == "none"
        arrow = FancyArrowPatch(path=MplPath(np.stack([start, control, end]), codes),
                                arrowstyle="-|>", mutation_scale=9, color=color,
                                linewidth=0.8 if is_none else 1.5,
                                linestyle="--" if is_none else "-", zorder=1)
        arrow.set_gid(f"edge-{k}")
        ax.add_patch(arrow)
        mid = 0.25 * start + 0.5 * control + 0.25 * end  # the curve at t = 1/2
        text = ax.text(float(mid[0]), float(mid[1]), op, ha="center", va="center",
                       fontsize=_FONT, color=color, zorder=3,
                       bbox={"boxstyle": "round,pad=0.2", "facecolor": "white",
                             "edgecolor": color, "linewidth": 0.6, "alpha": 0.92})
        text.set_gid(f"label-{k}")
    for node, p in pos.items():
        ax.add_patch(Circle((float(p[0]), float(p[1])), _RADIUS,
                            facecolor=_FILL.get(node, _NODE_FILL), edgecolor="#333333",
                            linewidth=1.0, zorder=2))
        ax.text(float(p[0]), float(p[1]), str(node), ha="center", va="center", fontsize=9,
                zorder=4)
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
