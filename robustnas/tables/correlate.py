"""How well proxies predict tabulated robustness: Kendall τ and Spearman ρ (scipy.stats).

For every proxy and every tabulated column (``clean``; each attack at each ε), the rank
correlations over the cells that have both, for all cells and for the top-k cells by clean
accuracy (where ranking is hardest and matters most for NAS; cells with equal clean
accuracy at the cut are taken in the order of their ids). Cells are matched through the
benchmark's meta data, so an isomorphic cell counts as its evaluated representative; cells
that map to the same representative are counted once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustnas.errors import DataError, UsageError
from robustnas.tables.base import TableBench


@dataclass(frozen=True)
class Correlation:
    """One (subset, column, proxy) cell of the result."""

    subset: str
    column: str
    proxy: str
    n: int
    kendall_tau: float
    spearman_rho: float


def rank_correlations(a: Sequence[float], b: Sequence[float]) -> tuple[int, float, float]:
    """``(n, τ, ρ)`` over the pairs where both values are finite (scipy's τ-b and ρ)."""
    from scipy.stats import kendalltau, spearmanr

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return len(x), float("nan"), float("nan")
    return len(x), float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)


def table_columns(bench: TableBench, dataset: str,
                  keys: Sequence[str] | None) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """``{"key@eps": (ids, values)}`` for the requested keys (default: clean + attacks)."""
    if keys is None:
        keys = bench.default_keys(dataset) or bench.available_keys(dataset)[:1]
        if not keys:
            keys = bench.keys(dataset)[:1]  # reading it reports the missing file
    out = {}
    for key in keys:
        series = bench.series(dataset, key)
        if series.levels is None:
            out[key] = (series.ids, series.values)
        else:
            for j, level in enumerate(series.levels):
                out[f"{key}@{level:g}"] = (series.ids, series.values[:, j])
    return out


def matched_cells(records: dict[str, dict[str, Any]], bench: TableBench) -> dict[str, str]:
    """``{representative id: measured cell string}`` for the measured cells the benchmark
    lists (the first measured cell of each representative)."""
    reps: dict[str, str] = {}
    for arch in records:
        try:
            _, rep = bench.meta.resolve(arch)
        except DataError:
            continue  # a cell the benchmark does not list
        reps.setdefault(rep, arch)
    return reps


def correlate(records: dict[str, dict[str, Any]], bench: TableBench, dataset: str = "cifar10",
              keys: Sequence[str] | None = None, proxies: Sequence[str] | None = None,
              top_k: int | None = 100, clean_key: str | None = None) -> list[Correlation]:
    """τ and ρ between each proxy and each column, for all cells and the top-k by clean."""
    from robustnas.tables.proxies import PROXIES

    proxies = list(proxies or PROXIES)
    reps = matched_cells(records, bench)
    if len(reps) < 2:
        raise UsageError(f"only {len(reps)} of the {len(records)} measured cells are in the "
                         f"benchmark: nothing to correlate")
    columns = table_columns(bench, dataset, keys)
    subsets = {"all": set(reps)}
    if top_k:
        clean_ids, clean_vals = bench.column(dataset, clean_key or bench.clean_key(dataset))
        clean = {i: float(v) for i, v in zip(clean_ids, clean_vals) if i in reps}
        # Ties at the cut are broken by id (smaller first), never by file order: with a
        # few equal accuracies at rank k, τ/ρ would otherwise move with the files' order.
        ranked = sorted(clean, key=lambda i: (-clean[i], int(i)))[:top_k]
        subsets[f"top{top_k}"] = set(ranked)
    results = []
    for subset, members in subsets.items():
        for column, (ids, values) in columns.items():
            table = {i: float(v) for i, v in zip(ids, values) if i in members}
            common = sorted(table)
            for proxy in proxies:
                px = [float(records[reps[i]].get(proxy, math.nan)) for i in common]
                n, tau, rho = rank_correlations(px, [table[i] for i in common])
                results.append(Correlation(subset, column, proxy, n, tau, rho))
    return results


def format_table(results: Sequence[Correlation]) -> str:
    """A text table: one row per (subset, column), τ/ρ per proxy."""
    proxies = list(dict.fromkeys(r.proxy for r in results))
    rows = list(dict.fromkeys((r.subset, r.column) for r in results))
    cell = {(r.subset, r.column, r.proxy): r for r in results}
    head = ["subset", "column", "n"] + [f"{p} τ / ρ" for p in proxies]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for subset, column in rows:
        n = cell[(subset, column, proxies[0])].n
        vals = [f"{cell[(subset, column, p)].kendall_tau:+.3f} / "
                f"{cell[(subset, column, p)].spearman_rho:+.3f}" for p in proxies]
        lines.append(" | ".join([subset, column, str(n), *vals]))
    return "\n".join(lines)


MIN_CELLS = 10
"""Below this many cells a rank correlation is noise: with n = 9 a τ of 0.5 is still within
chance (two-sided p > 0.05), and with n < 5 no τ at all is significant."""


def small_n_warnings(results: Sequence[Correlation], minimum: int = MIN_CELLS) -> list[str]:
    """One line per subset whose correlations rest on fewer than ``minimum`` cells."""
    out = []
    for subset in dict.fromkeys(r.subset for r in results):
        ns = [r.n for r in results if r.subset == subset]
        if ns and min(ns) < minimum:
            out.append(f"{subset}: τ and ρ over only {min(ns)} cells (fewer than {minimum}) "
                       f"mean little: with so few cells even a large τ is within chance; "
                       f"measure more cells (--cells) or use a larger --top-k")
    return out


def draw_heatmap(results: Sequence[Correlation], path: str | Path, subset: str = "all",
                 stat: str = "kendall_tau") -> Path:
    """PNG heatmap of ``stat`` (rows: columns of the table, cols: proxies) for ``subset``.

    The figure is sized from its labels so that none is clipped; values are printed in white
    on dark cells and black on light ones; cells over fewer than :data:`MIN_CELLS` cells are
    hatched and the title says so.
    """
    from robustnas.io import atomic_write_bytes
    from robustnas.viz._render import figure_bytes, new_figure

    chosen = [r for r in results if r.subset == subset]
    if not chosen:
        raise UsageError(f"no results for subset {subset!r}")
    proxies = list(dict.fromkeys(r.proxy for r in chosen))
    columns = list(dict.fromkeys(r.column for r in chosen))
    grid = np.full((len(columns), len(proxies)), np.nan)
    ns = np.zeros((len(columns), len(proxies)), dtype=int)
    for r in chosen:
        grid[columns.index(r.column), proxies.index(r.proxy)] = getattr(r, stat)
        ns[columns.index(r.column), proxies.index(r.proxy)] = r.n
    # Margins in inches from the longest labels (7 pt text is at most about 0.065 in per
    # character; proxy names rotated by 30° need about half their length below the axes).
    left = 0.3 + 0.065 * max(len(c) for c in columns)
    bottom = 0.3 + 0.065 * max(len(p) for p in proxies) * 0.5
    body_w, body_h = 0.9 * len(proxies), 0.3 * len(columns)
    right, top = 0.9, 0.55
    width, height = left + body_w + right, bottom + body_h + top
    fig = new_figure(width, height)
    ax = fig.add_axes((left / width, bottom / height, body_w / width, body_h / height))
    bar = fig.add_axes(((left + body_w + 0.15) / width, bottom / height, 0.12 / width,
                        body_h / height))
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(proxies)), proxies, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(columns)), columns, fontsize=7)
    ax.tick_params(length=0)
    few = int(ns.min()) < MIN_CELLS
    for i in range(len(columns)):
        for j in range(len(proxies)):
            if ns[i, j] < MIN_CELLS:
                ax.add_patch(_hatch(j, i))
            if np.isfinite(grid[i, j]):
                dark = abs(grid[i, j]) > 0.55  # the ends of RdBu_r are dark
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black", fontweight="bold")
    label = "Kendall τ" if stat == "kendall_tau" else "Spearman ρ"
    n_text = f"n = {int(ns.min())}" if ns.min() == ns.max() else \
        f"n = {int(ns.min())}–{int(ns.max())}"
    title = f"{label} of proxies vs tabulated accuracy ({subset}, {n_text} cells)"
    if few:
        title += f"\nhatched: fewer than {MIN_CELLS} cells, too few for τ to mean anything"
    ax.set_title(title, fontsize=8)
    fig.colorbar(image, cax=bar).ax.tick_params(labelsize=6)
    path = Path(path)
    atomic_write_bytes(path, figure_bytes(fig, "png"))
    return path


def _hatch(x: int, y: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#777777",
                     linewidth=0, gid="few-cells")
