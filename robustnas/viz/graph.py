"""Drawing pieces shared by the architecture pictures (DARTS cells, NAS-Bench-201 cells,
NARes networks): the figure and its axes, node circles, curved arrows and edge labels.

Every picture is laid out in data units with one scale (``inch`` inches per unit), gets a
title strip above the axes when titled, and uses the same node fills (inputs green,
intermediate nodes blue, outputs yellow), arrow style and label boxes, so that the pictures
of all spaces look alike. Each piece takes an ``ax`` and adds its artists in the order it
is called (SVG element order follows it). Matplotlib only, on an Agg canvas
(:mod:`robustnas.viz._render`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robustnas.viz._render import new_figure

NODE_FILL: dict[str, str] = {"input": "#d5ecd4", "node": "#d6e6f5", "output": "#f3e9b8"}
"""Fill colour of a node by role: the cell's or network's inputs, inner nodes, outputs."""

NODE_EDGE = "#333333"
"""Outline colour of nodes and boxes."""

TITLE_HEIGHT = 0.35
"""Inches above the axes for a title."""


def picture_axes(lo: np.ndarray, hi: np.ndarray, inch: float, title: str | None = None, *,
                 equal_aspect: bool = True) -> tuple[Any, Any]:
    """``(figure, axes)`` showing the data box ``lo``..``hi`` at ``inch`` inches per data
    unit, axes hidden, with ``title`` centred in a strip above when given."""
    head = TITLE_HEIGHT if title else 0.0
    width, height = (hi - lo) * inch
    fig = new_figure(float(width), float(height) + head)
    ax = fig.add_axes((0.0, 0.0, 1.0, height / (height + head)))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    if equal_aspect:
        ax.set_aspect("equal")
    ax.axis("off")
    if title:
        fig.text(0.5, 1.0 - 0.5 * head / (height + head), title, ha="center", va="center",
                 fontsize=10)
    return fig, ax


def curved_arrow(ax: Any, start: np.ndarray, control: np.ndarray, end: np.ndarray,
                 color: str, *, linewidth: float, dashed: bool = False,
                 gid: str | None = None) -> Any:
    """An arrow along the quadratic Bézier curve ``start``-``control``-``end`` (below the
    nodes and labels); returns the patch."""
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path as MplPath

    codes = [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3]
    arrow = FancyArrowPatch(path=MplPath(np.stack([start, control, end]), codes),
                            arrowstyle="-|>", mutation_scale=9, color=color,
                            linewidth=linewidth, linestyle="--" if dashed else "-", zorder=1)
    if gid is not None:
        arrow.set_gid(gid)
    ax.add_patch(arrow)
    return arrow


def edge_label(ax: Any, where: np.ndarray, text: str, color: str, *, fontsize: float,
               gid: str | None = None) -> Any:
    """``text`` (an operation's name) in a white rounded box outlined in ``color``,
    centred at ``where``, above arrows and nodes; returns the text artist."""
    label = ax.text(float(where[0]), float(where[1]), text, ha="center", va="center",
                    fontsize=fontsize, color=color, zorder=3,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white",
                          "edgecolor": color, "linewidth": 0.6, "alpha": 0.92})
    if gid is not None:
        label.set_gid(gid)
    return label


def node_circle(ax: Any, centre: np.ndarray, radius: float, text: str, fill: str) -> None:
    """A node: a circle of ``radius`` filled with ``fill`` and ``text`` in its middle."""
    from matplotlib.patches import Circle

    x, y = float(centre[0]), float(centre[1])
    ax.add_patch(Circle((x, y), radius, facecolor=fill, edgecolor=NODE_EDGE, linewidth=1.0,
                        zorder=2))
    ax.text(x, y, text, ha="center", va="center", fontsize=9, zorder=4)
