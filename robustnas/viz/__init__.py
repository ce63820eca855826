"""Pictures: DARTS cell diagrams (PNG/SVG) and α heatmaps, drawn with matplotlib only.

Nothing here uses pyplot or a system binary (graphviz): figures are rendered on an explicit
Agg canvas, so drawing is safe from threads, headless machines and notebooks.
"""

from robustnas.viz.cell import OP_COLORS, cell_image, check_cell, draw_cell, draw_genotype
from robustnas.viz.heatmap import (
    alpha_heatmap,
    darts_kept_cells,
    draw_alpha_heatmap,
    edge_labels,
)

__all__ = ["OP_COLORS", "alpha_heatmap", "cell_image", "check_cell", "darts_kept_cells",
           "draw_alpha_heatmap", "draw_cell", "draw_genotype", "edge_labels"]
