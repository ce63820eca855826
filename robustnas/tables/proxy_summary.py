"""Proxy values of a sample of cells, without a benchmark table (``correlate`` with no
``--bench-root``).

The correlation of a proxy with robust accuracy needs the tabulated accuracies (the
robustness dataset, which users supply). Without them ``correlate --space nb201 --cells N``
still measures every proxy at initialisation on ``N`` seeded random cells and reports what
can be said from the values alone: for each proxy n, mean ± sample sd, min, max and how many
cells it could not score (non-finite), and Kendall τ between every pair of proxies over the
cells both score (scipy.stats.kendalltau, τ-b), which shows which proxies rank the cells
alike (e.g. ``params`` and ``flops``) and so carry the same information.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def summarize(records: dict[str, dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """``{"cells": n, "proxies": {name: stats}, "kendall": {a: {b: τ}}}`` of ``records``."""
    from scipy import stats

    cells = sorted(records)
    values = {name: np.asarray([_number(records[c].get(name)) for c in cells])
              for name in names}
    proxies: dict[str, dict[str, float | int | None]] = {}
    for name, column in values.items():
        finite = column[np.isfinite(column)]
        proxies[name] = {
            "n": int(finite.size), "non_finite": int(column.size - finite.size),
            "mean": float(finite.mean()) if finite.size else None,
            "sd": float(finite.std(ddof=1)) if finite.size > 1 else None,
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None}
    kendall: dict[str, dict[str, float | None]] = {}
    for a in names:
        kendall[a] = {}
        for b in names:
            both = np.isfinite(values[a]) & np.isfinite(values[b])
            tau = None
            if both.sum() >= 3 and np.ptp(values[a][both]) > 0 and np.ptp(values[b][both]) > 0:
                tau = float(stats.kendalltau(values[a][both], values[b][both]).statistic)
            kendall[a][b] = tau
    return {"cells": len(cells), "proxies": proxies, "kendall": kendall}


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def format_summary(summary: dict[str, Any]) -> str:
    """The per-proxy table (n, mean ± sd, min, max) as text."""
    lines = [f"{'proxy':<24} {'n':>4}  {'mean ± sd':>26}  {'min':>11}  {'max':>11}"]
    for name, s in summary["proxies"].items():
        if s["mean"] is None:
            lines.append(f"{name:<24} {s['n']:>4}  {'(no finite value)':>26}")
            continue
        sd = f"{s['sd']:.4g}" if s["sd"] is not None else "-"
        spread = f"{s['mean']:.4g} ± {sd}"
        note = f"  ({s['non_finite']} non-finite)" if s["non_finite"] else ""
        lines.append(f"{name:<24} {s['n']:>4}  {spread:>26}  {s['min']:>11.4g}  "
                     f"{s['max']:>11.4g}{note}")
    return "\n".join(lines)
