"""The picture of a NARes architecture: stem, three stages of blocks, classifier head.

Left to right: the 3x3 stem (16 channels), one panel per stage holding its ``D_i`` blocks as
bars whose height grows with the stage's channels (16·W1, 32·W2, 64·W3), and the head
(BN-ReLU, pooling, linear). Each panel is labelled with depth, widen factor, channels and
stride. Very deep stages (non-strict genotypes) show their first blocks and an ellipsis.
Drawing uses the shared pieces of :mod:`robustnas.viz.graph` (matplotlib on an Agg canvas).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robustnas.space.nares.genotype import NAResGenotype, load_nares_genotype
from robustnas.viz._render import figure_array, write_figure
from robustnas.viz.graph import NODE_EDGE, NODE_FILL, picture_axes

STAGE_COLORS = ("#3d9a50", "#e07b2f", "#3aa0c4")
"""Bar colour of stages 1-3."""
MAX_DRAWN_BLOCKS = 12
"""Blocks drawn per stage at most; deeper stages end in an ellipsis."""

_PANEL = 2.7       # width of a stage panel (data units)
_GAP = 0.45        # space between boxes
_SMALL = 1.15      # width of the stem and head boxes
_TALL = 2.2        # bar height of the widest stage
_INCH = 0.72
_FONT = 7.5


def _box(ax: Any, x: float, width: float, text: str, face: str) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, -0.55), width, 1.1, boxstyle="round,pad=0.04",
                                facecolor=face, edgecolor=NODE_EDGE, linewidth=0.9))
    ax.text(x + width / 2, 0.0, text, ha="center", va="center", fontsize=_FONT)


def _arrow(ax: Any, x0: float, x1: float) -> None:
    ax.annotate("", xy=(x1, 0.0), xytext=(x0, 0.0),
                arrowprops={"arrowstyle": "-|>", "color": "#555555", "linewidth": 0.9})


def _stage(ax: Any, x: float, stage: int, depth: int, width: int, channels: int,
           widest: int) -> None:
    from matplotlib.patches import FancyBboxPatch, Rectangle

    half = _TALL / 2 + 0.35
    panel = FancyBboxPatch((x, -half), _PANEL, 2 * half, boxstyle="round,pad=0.04",
                           facecolor="#f4f4f4", edgecolor="#777777", linewidth=0.8)
    panel.set_gid(f"stage-{stage}")
    ax.add_patch(panel)
    shown = min(depth, MAX_DRAWN_BLOCKS)
    slots = shown + (1 if depth > shown else 0)
    pitch = min((_PANEL - 0.3) / max(slots, 1), 0.45)  # a shallow stage: narrow bars
    start = x + (_PANEL - slots * pitch) / 2  # centred in the panel
    bar_h = 0.35 + (_TALL - 0.35) * channels / max(widest, 1)
    color = STAGE_COLORS[stage - 1]
    for j in range(shown):
        bar = Rectangle((start + j * pitch + 0.12 * pitch, -bar_h / 2), 0.76 * pitch, bar_h,
                        facecolor=color, edgecolor="#333333", linewidth=0.5,
                        alpha=0.6 if j else 0.95)  # the first block (stride, projection)
        bar.set_gid(f"block-{stage}-{j}")
        ax.add_patch(bar)
    if depth > shown:
        ax.text(start + (slots - 0.5) * pitch, 0.0, "…", ha="center", va="center",
                fontsize=10)
    stride = 1 if stage == 1 else 2
    ax.text(x + _PANEL / 2, half + 0.22, f"stage {stage}", ha="center", va="bottom",
            fontsize=_FONT + 0.5, fontweight="bold")
    ax.text(x + _PANEL / 2, -half - 0.18,
            f"D{stage} = {depth} block{'s' if depth != 1 else ''}, W{stage} = {width}\n"
            f"{channels} ch, stride {stride}",
            ha="center", va="top", fontsize=_FONT)


def _build_figure(genotype: NAResGenotype, title: str | None) -> Any:
    channels = genotype.channels()
    widest = max(channels)
    total = 2 * _SMALL + 3 * _PANEL + 4 * _GAP
    lo = np.array([-0.25, -_TALL / 2 - 1.35])
    hi = np.array([total + 0.25, _TALL / 2 + 0.9])
    fig, ax = picture_axes(lo, hi, _INCH, title, equal_aspect=False)
    x = 0.0
    _box(ax, x, _SMALL, "stem\nconv 3×3\n16 ch", NODE_FILL["input"])
    x += _SMALL
    for stage, (depth, w, ch) in enumerate(zip(genotype.depths, genotype.widths, channels),
                                           start=1):
        _arrow(ax, x + 0.05, x + _GAP - 0.05)
        x += _GAP
        _stage(ax, x, stage, depth, w, ch, widest)
        x += _PANEL
    _arrow(ax, x + 0.05, x + _GAP - 0.05)
    x += _GAP
    _box(ax, x, _SMALL, "BN-ReLU\npool\nlinear", NODE_FILL["output"])
    return fig


def draw_nares(genotype: NAResGenotype | str, path_prefix: str | Path,
               title: str | None = None) -> list[Path]:
    """Draw the architecture to ``<path_prefix>.png`` and ``<path_prefix>.svg`` (atomic
    writes, the formats of the other spaces' pictures); returns the paths."""
    geno = load_nares_genotype(genotype, strict=False)
    return write_figure(_build_figure(geno, title), path_prefix)


def nares_image(genotype: NAResGenotype | str, title: str | None = None,
                dpi: float = 80) -> np.ndarray:
    """The picture as an ``H x W x 3`` uint8 RGB array (e.g. for TensorBoard)."""
    geno = load_nares_genotype(genotype, strict=False)
    return figure_array(_build_figure(geno, title), dpi=dpi)
