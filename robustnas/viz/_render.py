"""Rendering of matplotlib figures to bytes and arrays without pyplot.

Figures are built with :class:`matplotlib.figure.Figure` and rendered through an explicit
Agg canvas, so drawing never touches pyplot's global figure registry or the interactive
backend: it is safe in worker threads, headless servers and notebooks alike.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

# SVG text is kept as <text> elements (searchable, editable, small) rather than glyph
# outlines; the salt makes element ids, and so the files, reproducible.
_SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "robustnas"}


def new_figure(width: float, height: float) -> Any:
    """A pyplot-free figure of ``width`` x ``height`` inches with an Agg canvas attached."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def figure_bytes(fig: Any, fmt: str, dpi: float = 110) -> bytes:
    """Encode ``fig`` as ``png`` or ``svg`` bytes (dates stripped so output is reproducible)."""
    import matplotlib

    buf = io.BytesIO()
    if fmt == "svg":
        # rcParams is global; the context only lasts for this one render.
        with matplotlib.rc_context(_SVG_RC):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    elif fmt == "png":
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    else:
        raise ValueError(f"unsupported picture format {fmt!r}")
    return buf.getvalue()


def figure_array(fig: Any, dpi: float = 80) -> np.ndarray:
    """Render ``fig`` to an ``H x W x 3`` uint8 RGB array (for TensorBoard images)."""
    fig.set_dpi(dpi)
    canvas = fig.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3]).copy()


def write_figure(fig: Any, path_stem: str | Path, formats: tuple[str, ...] = ("png", "svg"),
                 dpi: float = 110) -> list[Path]:
    """Write ``fig`` to ``<path_stem>.<fmt>`` for each format, each file atomically."""
    from robustnas.io import atomic_write_bytes

    written = []
    for fmt in formats:
        # Appending (not Path.with_suffix) keeps stems that contain dots intact.
        path = Path(f"{path_stem}.{fmt}")
        atomic_write_bytes(path, figure_bytes(fig, fmt, dpi=dpi))
        written.append(path)
    return written
