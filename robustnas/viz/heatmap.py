"""Heatmaps of architecture weights: one row per edge, one column per candidate operation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robustnas.errors import UsageError
from robustnas.viz._render import figure_array, new_figure, write_figure


def state_name(state: int) -> str:
    """A cell state as the pictures name it: ``c_{k-2}``, ``c_{k-1}`` (mathtext), ``node i``."""
    return {0: r"$c_{k-2}$", 1: r"$c_{k-1}$"}.get(state, f"node {state}")


def edge_labels(num_edges: int) -> list[str]:
    """Row labels ``"node j ← source"`` in DARTS edge order (node 2's 2 inputs, node 3's 3 ...).

    States are numbered as in the genotype JSON and the cell pictures: 0 and 1 are the cell
    inputs (labelled ``c_{k-2}``, ``c_{k-1}``), 2, 3, ... the intermediate nodes. A count that
    is not a DARTS edge count gets plain ``"edge k"`` labels.
    """
    labels: list[str] = []
    node = 2
    while len(labels) < num_edges:
        labels += [f"node {node} ← {state_name(i)}" for i in range(node)]
        node += 1
    if len(labels) != num_edges:
        return [f"edge {k}" for k in range(num_edges)]
    return labels


def _as_matrix(weights: Any, primitives: Sequence[str]) -> np.ndarray:
    if hasattr(weights, "detach"):
        weights = weights.detach().float().cpu().numpy()
    values = np.asarray(weights, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise UsageError(f"architecture weights must be an (edges x ops) matrix, "
                         f"got shape {tuple(values.shape)}")
    if values.shape[1] != len(primitives):
        raise UsageError(f"architecture weights have {values.shape[1]} columns but "
                         f"{len(primitives)} operation names were given")
    return values


def darts_kept_cells(edges: Sequence[tuple[str, int]],
                     primitives: Sequence[str]) -> list[tuple[int, int]]:
    """``(row, column)`` of each operation a DARTS cell keeps, in the heatmap's layout.

    ``edges`` is a genotype's ``normal`` or ``reduce`` list, two ``(op, input)`` pairs per
    node; node ``j`` (2, 3, ...) has rows for its inputs 0 .. j-1 after those of node j-1.
    """
    kept = []
    offset = 0
    for n in range(len(edges) // 2):
        for op, source in edges[2 * n:2 * n + 2]:
            if op in primitives:
                kept.append((offset + int(source), list(primitives).index(op)))
        offset += n + 2
    return kept


def _winners(values: np.ndarray, primitives: Sequence[str],
             kept: Sequence[tuple[int, int]] | None) -> set[tuple[int, int]]:
    """The cells printed in bold: the kept operations when known, else each row's best
    operation other than ``none`` (the one DARTS would take for that edge; ``none`` never
    is, so bolding it where it is largest would point at an operation that is not used)."""
    if kept is not None:
        return {(int(r), int(c)) for r, c in kept}
    scores = np.where(np.isfinite(values), values, -np.inf)
    if "none" in primitives and len(primitives) > 1:
        scores = scores.copy()
        scores[:, list(primitives).index("none")] = -np.inf
    return {(r, int(c)) for r, c in enumerate(scores.argmax(axis=1))}


def _build_figure(weights: Any, primitives: Sequence[str], title: str | None,
                  kept: Sequence[tuple[int, int]] | None = None) -> Any:
    from matplotlib.colors import Normalize, TwoSlopeNorm
    from matplotlib.patches import Rectangle

    values = _as_matrix(weights, primitives)
    rows, cols = values.shape
    # Margins in inches (row labels left, op names below, title above, colour bar right).
    left, right, bottom, top = 1.45, 0.75, 0.85, 0.4
    body_w, body_h = 0.78 * cols, 0.27 * rows
    width, height = left + body_w + right, bottom + body_h + top
    fig = new_figure(width, height)
    ax = fig.add_axes((left / width, bottom / height, body_w / width, body_h / height))
    bar = fig.add_axes(((left + body_w + 0.12) / width, bottom / height, 0.12 / width,
                        body_h / height))
    finite = values[np.isfinite(values)]
    uniform = _uniform_weight(values)
    norm: Normalize
    if uniform is not None and cols > 1:
        # Probabilities: a diverging scale centred on the uniform weight 1/K, so that the
        # differences that exist are visible (white = uniform), and three decimals. The
        # scale stays within [0, 1] (a probability is never negative): the two halves may
        # then differ in length, so the centre is pinned with TwoSlopeNorm.
        spread = float(np.abs(finite - uniform).max()) if finite.size else 0.0
        spread = max(spread, 1e-6)
        lo, hi = max(0.0, uniform - spread), min(1.0, uniform + spread)
        norm, cmap, fmt = TwoSlopeNorm(uniform, lo, hi), "RdBu_r", "{:.3f}"
    else:
        uniform = None
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        norm, cmap, fmt = Normalize(lo, hi), "viridis", "{:.3g}"
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm,
                      aspect="auto", interpolation="nearest")
    ax.set_xticks(range(cols), [str(p) for p in primitives], rotation=35, ha="right",
                  fontsize=7)
    ax.set_yticks(range(rows), edge_labels(rows), fontsize=7)
    ax.tick_params(length=0)
    if title or kept is not None:
        note = "boxed: kept in the derived cell" if kept is not None else ""
        ax.set_title("\n".join(t for t in (title, note) if t), fontsize=9 if title else 7)
    # Bold marks the kept (or best usable) operation; dark cells get light text so the value
    # stays legible; a box marks every kept edge.
    winners = _winners(values, primitives, kept)
    for r in range(rows):
        for c in range(cols):
            v = values[r, c]
            shade = float(norm(v)) if np.isfinite(v) else 1.0
            dark = abs(shade - 0.5) > 0.35 if uniform is not None else shade <= 0.55
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=6,
                    color="white" if dark else "black",
                    fontweight="bold" if (r, c) in winners else "normal")
    for r, c in sorted(winners) if kept is not None else ():
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="black",
                               linewidth=1.4, gid="kept"))
    colorbar = fig.colorbar(image, cax=bar)
    colorbar.ax.tick_params(labelsize=6)
    if uniform is not None:
        colorbar.set_label(f"white = uniform 1/{cols}", fontsize=6)
    return fig


def _uniform_weight(values: np.ndarray) -> float | None:
    """``1/K`` when every finite row is a probability distribution over the K columns."""
    rows = values[np.isfinite(values).all(axis=1)]
    if not rows.size or (rows < 0).any() or not np.allclose(rows.sum(axis=1), 1.0, atol=1e-4):
        return None
    return 1.0 / values.shape[1]


def alpha_heatmap(weights: Any, primitives: Sequence[str], title: str | None = None,
                  dpi: float = 80, kept: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """An ``H x W x 3`` uint8 heatmap of ``weights`` (edges x ops) with values annotated.

    ``weights`` is a tensor or array, e.g. ``softmax(α)`` of one cell type; rows are labelled
    ``"node j <- input i"``, columns by ``primitives``. ``kept``: the ``(row, column)`` cells
    of the derived cell (:func:`darts_kept_cells` for DARTS), boxed and in bold; without it
    each row's best operation other than ``none`` is in bold.
    """
    return figure_array(_build_figure(weights, primitives, title, kept), dpi=dpi)


def draw_alpha_heatmap(weights: Any, primitives: Sequence[str], path_stem: str | Path,
                       title: str | None = None,
                       kept: Sequence[tuple[int, int]] | None = None) -> list[Path]:
    """Write the heatmap of :func:`alpha_heatmap` to ``<path_stem>.png`` and ``.svg``."""
    return write_figure(_build_figure(weights, primitives, title, kept), path_stem)
