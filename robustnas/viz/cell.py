"""Pictures of DARTS cells: inputs on the left, intermediate nodes by depth, output on the right.

A cell is a list of ``(op, input)`` pairs, two per intermediate node: inputs 0 and 1 are the
cell inputs ``c_{k-2}`` and ``c_{k-1}``, input ``i >= 2`` is the intermediate node drawn as
``i`` (the genotype's state numbers, as in the JSON and the α heatmaps), and the output
``c_{k}`` concatenates the states listed in ``concat``. Drawing uses matplotlib
only (Agg, no pyplot, no graphviz). Edges are quadratic Bézier curves whose bend and label
position are picked greedily among a few candidates so that curves avoid unrelated nodes
and labels do not overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustnas.errors import GenotypeError
from robustnas.viz._render import figure_array, write_figure
from robustnas.viz.graph import NODE_FILL, curved_arrow, edge_label, node_circle, picture_axes

OP_COLORS: dict[str, str] = {
    "none": "#9e9e9e",
    "max_pool_3x3": "#3f6fb0",
    "avg_pool_3x3": "#3aa0c4",
    "skip_connect": "#c2393f",
    "sep_conv_3x3": "#3d9a50",
    "sep_conv_5x5": "#1f5f30",
    "dil_conv_3x3": "#e07b2f",
    "dil_conv_5x5": "#8a4f22",
}
"""Edge colour per operation; unknown operations are drawn in :data:`OTHER_COLOR`."""

OTHER_COLOR = "#555555"

_X_GAP = 3.0          # data units between columns
_Y_GAP = 1.4          # data units between nodes of a column
_RADIUS = 0.34        # node radius, data units
_INCH = 0.75          # inches per data unit (aspect is equal, so one scale for x and y)
_FONT = 7.0           # edge-label font size, points
_BENDS = (0.0, -0.15, 0.15, -0.3, 0.3, -0.45, 0.45)
_LABEL_T = (0.5, 0.42, 0.58, 0.34, 0.66, 0.27, 0.73)


@dataclass
class _Curve:
    start: np.ndarray
    control: np.ndarray
    end: np.ndarray

    def at(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)[..., None]
        return (1 - t) ** 2 * self.start + 2 * (1 - t) * t * self.control + t ** 2 * self.end

    def segment(self, t0: float, t1: float) -> _Curve:
        """The part of the curve between ``t0`` and ``t1`` (blossoming of the quadratic)."""
        ctrl = ((1 - t0) * (1 - t1) * self.start + ((1 - t0) * t1 + t0 * (1 - t1)) * self.control
                + t0 * t1 * self.end)
        return _Curve(self.at(t0), ctrl, self.at(t1))


def check_cell(edges: Sequence[Sequence[Any]], concat: Sequence[int]) -> tuple[
        list[tuple[str, int]], list[int]]:
    """Validate one cell's ``(op, input)`` pairs and ``concat``; raise GenotypeError."""
    try:
        pairs = [(str(op), int(idx)) for op, idx in edges]
        out = [int(c) for c in concat]
    except (TypeError, ValueError) as exc:
        raise GenotypeError(f"cell edges must be (op, input) pairs ({exc})") from None
    if not pairs or len(pairs) % 2:
        raise GenotypeError(f"a cell needs 2 edges per node, got {len(pairs)} edges")
    steps = len(pairs) // 2
    for k, (op, idx) in enumerate(pairs):
        if not 0 <= idx < k // 2 + 2:
            raise GenotypeError(f"edge {k} ({op}) of node {k // 2 + 2}: input {idx} out of range "
                                f"0..{k // 2 + 1}")
    if not out or len(set(out)) != len(out) or any(not 0 <= c < steps + 2 for c in out):
        raise GenotypeError(f"concat {out} must list distinct states in 0..{steps + 1}")
    return pairs, out


def _layout(pairs: list[tuple[str, int]], concat: list[int]) -> tuple[dict[int, np.ndarray],
                                                                       dict[int, int]]:
    """Positions of states (0, 1 inputs; 2.. nodes; -1 output) and their column."""
    steps = len(pairs) // 2
    depth = {0: 0, 1: 0}
    for node in range(steps):
        depth[node + 2] = 1 + max(depth[pairs[2 * node][1]], depth[pairs[2 * node + 1][1]])
    last = max(depth.values()) + 1
    depth[-1] = last
    # Inputs spread with the tallest column so that the fan of edges out of them opens up.
    tallest = max(sum(1 for v in depth.values() if v == col) for col in range(1, last))
    half = max(_Y_GAP / 2, (tallest - 1) * _Y_GAP / 4)
    pos = {0: np.array([0.0, half]), 1: np.array([0.0, -half])}
    for col in range(1, last):
        members = [s for s in range(2, steps + 2) if depth[s] == col]
        # Barycentre ordering: a node sits near the inputs it reads, which limits crossings.
        bary = {s: np.mean([pos[pairs[2 * (s - 2) + j][1]][1] for j in (0, 1)]) for s in members}
        members.sort(key=lambda s: (-bary[s], s))
        for i, s in enumerate(members):
            pos[s] = np.array([col * _X_GAP, ((len(members) - 1) / 2 - i) * _Y_GAP])
    pos[-1] = np.array([last * _X_GAP, float(np.mean([pos[c][1] for c in concat]))])
    return pos, depth


def _label_size(text: str) -> np.ndarray:
    width = (len(text) * _FONT * 0.6 + 6) / 72 / _INCH
    height = (_FONT * 1.3 + 5) / 72 / _INCH
    return np.array([width, height])


def _box_overlap(c1: np.ndarray, s1: np.ndarray, c2: np.ndarray, s2: np.ndarray) -> float:
    gap = (s1 + s2) / 2 - np.abs(c1 - c2)
    return float(max(gap[0], 0.0) * max(gap[1], 0.0))


def _inside(points: np.ndarray, centre: np.ndarray, size: np.ndarray) -> int:
    """How many of ``points`` fall inside the box of ``size`` around ``centre``."""
    return int(np.sum(np.all(np.abs(points - centre) < size / 2, axis=1)))


class _Router:
    """Greedy edge routing: each edge takes the bend and label spot that clashes least with
    the nodes, the labels and the curves placed before it."""

    def __init__(self, pos: dict[int, np.ndarray]) -> None:
        self.pos = pos
        self.labels: list[tuple[np.ndarray, np.ndarray]] = []
        self.curves: list[np.ndarray] = []
        self.used: set[tuple[int, int, float]] = set()
        self.node_box = np.full(2, 2 * _RADIUS)

    def route(self, src: int, dst: int, label: str | None) -> tuple[_Curve, np.ndarray | None]:
        a, b = self.pos[src], self.pos[dst]
        d = b - a
        others = [p for s, p in self.pos.items() if s not in (src, dst)]
        ts = np.linspace(0.08, 0.92, 24)
        size = _label_size(label) if label else np.zeros(2)
        drawn = np.concatenate(self.curves) if self.curves else np.zeros((0, 2))
        best: tuple[float, float, _Curve, np.ndarray] | None = None
        for rad in _BENDS:
            curve = _Curve(a, (a + b) / 2 + rad * np.array([d[1], -d[0]]), b)
            pts = curve.at(ts)
            # A repeated (src, dst) pair must bend differently or the two edges coincide.
            cost = 3.0 * abs(rad) + (25.0 if (src, dst, rad) in self.used else 0.0)
            for p in others:
                cost += 10.0 * float(np.sum(np.linalg.norm(pts - p, axis=1) < _RADIUS + 0.15))
            cost += 0.3 * sum(_inside(pts, c, s) for c, s in self.labels)
            where = curve.at(0.5)
            if label:
                options = []
                for t in _LABEL_T:
                    c = curve.at(t)
                    pen = 40.0 * sum(_box_overlap(c, size, q, s) for q, s in self.labels)
                    pen += 40.0 * sum(_box_overlap(c, size, p, self.node_box)
                                      for p in self.pos.values())
                    pen += 0.5 * _inside(drawn, c, size)
                    options.append((pen + 0.3 * abs(t - 0.5), c))
                pen, where = min(options, key=lambda o: o[0])
                cost += pen
            if best is None or cost < best[0] - 1e-9:
                best = (cost, rad, curve, where)
        assert best is not None
        _, rad, curve, where = best
        self.used.add((src, dst, rad))
        self.curves.append(curve.at(np.linspace(0.05, 0.95, 40)))
        if label:
            self.labels.append((where, size))
            return curve, where
        return curve, None


def _trim(curve: _Curve, radius: float) -> _Curve:
    """Cut the curve where it leaves the source node and enters the target node."""
    ts = np.linspace(0.0, 1.0, 201)
    pts = curve.at(ts)
    out_src = np.linalg.norm(pts - curve.start, axis=1) >= radius + 0.03
    out_dst = np.linalg.norm(pts - curve.end, axis=1) >= radius + 0.05
    t0 = ts[np.argmax(out_src)] if out_src.any() else 0.0
    t1 = ts[len(ts) - 1 - np.argmax(out_dst[::-1])] if out_dst.any() else 1.0
    if t1 <= t0:
        return curve
    return curve.segment(float(t0), float(t1))


def _state_label(state: int) -> str:
    # The genotype's state numbers (0, 1: inputs; 2, 3, ...: intermediate nodes), so the
    # picture, the JSON and the α heatmap name every node the same way.
    return {0: r"$c_{k-2}$", 1: r"$c_{k-1}$", -1: r"$c_{k}$"}.get(state, str(state))


def _build_figure(edges: Sequence[Sequence[Any]], concat: Sequence[int],
                  title: str | None) -> Any:
    pairs, out = check_cell(edges, concat)
    pos, depth = _layout(pairs, out)
    router = _Router(pos)
    order = sorted(range(len(pairs)), key=lambda k: (depth[k // 2 + 2] - depth[pairs[k][1]], k))
    drawn: list[tuple[int, str, _Curve, np.ndarray | None, bool]] = []
    for k in order:
        op, src = pairs[k]
        curve, where = router.route(src, k // 2 + 2, op)
        drawn.append((k, op, curve, where, False))
    for state in out:
        curve, _ = router.route(state, -1, None)
        drawn.append((state, "concat", curve, None, True))

    # Figure extents follow the content so one data unit is _INCH inches in both directions.
    pts = [p for p in pos.values()]
    pts += [c.at(t) for _, _, c, _, _ in drawn for t in (0.25, 0.5, 0.75)]
    pts += [w + s * sign / 2 for w, s in router.labels for sign in (np.array([1, 1]),
                                                            np.array([-1, -1]))]
    lo = np.min(pts, axis=0) - (_RADIUS + 0.25)
    hi = np.max(pts, axis=0) + (_RADIUS + 0.25)
    fig, ax = picture_axes(lo, hi, _INCH, title)
    for key, op, curve, where, is_concat in drawn:
        seg = _trim(curve, _RADIUS)
        color = "#8c8c8c" if is_concat else OP_COLORS.get(op, OTHER_COLOR)
        curved_arrow(ax, seg.start, seg.control, seg.end, color,
                     linewidth=1.0 if is_concat else 1.4, dashed=is_concat,
                     gid=f"concat-{key}" if is_concat else f"edge-{key}")
        if where is not None:
            edge_label(ax, where, op, color, fontsize=_FONT, gid=f"label-{key}")
    for state, p in pos.items():
        kind = "input" if state in (0, 1) else "output" if state == -1 else "node"
        node_circle(ax, p, _RADIUS, _state_label(state), NODE_FILL[kind])
    return fig


def draw_cell(edges: Sequence[Sequence[Any]], concat: Sequence[int], path_stem: str | Path,
              title: str | None = None) -> list[Path]:
    """Draw one cell to ``<path_stem>.png`` and ``<path_stem>.svg`` (atomic writes).

    ``edges`` are the cell's ``(op, input)`` pairs (``genotype.normal`` or
    ``genotype.reduce``), ``concat`` the states the output concatenates. Returns the two
    paths written. Raises GenotypeError for a malformed cell.
    """
    return write_figure(_build_figure(edges, concat, title), path_stem)


def cell_image(edges: Sequence[Sequence[Any]], concat: Sequence[int], title: str | None = None,
               dpi: float = 80) -> np.ndarray:
    """The cell picture as an ``H x W x 3`` uint8 RGB array (e.g. for TensorBoard)."""
    return figure_array(_build_figure(edges, concat, title), dpi=dpi)


def draw_genotype(genotype: Any, out_dir: str | Path, prefix: str = "") -> dict[str, list[Path]]:
    """Draw both cells of ``genotype`` into ``out_dir``.

    Writes ``<prefix>normal.png/.svg`` and ``<prefix>reduction.png/.svg``; returns
    ``{"normal": [png, svg], "reduction": [png, svg]}``.
    """
    from robustnas.io import ensure_writable_dir

    out = ensure_writable_dir(out_dir)
    return {
        "normal": draw_cell(genotype.normal, genotype.normal_concat, out / f"{prefix}normal",
                            title="normal cell"),
        "reduction": draw_cell(genotype.reduce, genotype.reduce_concat,
                               out / f"{prefix}reduction", title="reduction cell"),
    }
