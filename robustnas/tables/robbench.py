"""Reader of NAS-RobBench-201 (Wu et al., ICLR 2024): NAS-Bench-201 cells adversarially trained.

Layout under the root: ``meta.json`` (same ``ids`` format as the robustness dataset, no
epsilons) and ``NAS-RobBench-201_all.json`` = ``{dataset: {id: {metric: {run: value}}}}``.
Metric names carry the attack and ε, e.g. ``val_pgd_3.0_acc``; they are grouped into keys
(``val_pgd`` with levels ε = 3.0, 8.0, ...; ``val_clean`` without levels). A value is a
number or a mapping of runs to numbers (their mean is used). This format is inferred from
public descriptions and readers of the benchmark, not from a specification: see the README.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from robustnas.errors import DataError, UsageError
from robustnas.tables.base import KeySeries, TableBench
from robustnas.tables.meta import BenchMeta, _id
from robustnas.tables.source import BenchSource

ORIGIN = "NAS-RobBench-201 (Wu et al. 2024)"
DATA_FILE = "NAS-RobBench-201_all.json"
_LEVELLED = re.compile(r"^(?P<key>.+?)_(?P<eps>\d+(?:\.\d+)?)_acc$")
_SCALAR = re.compile(r"^(?P<key>.+)_acc$")


def _metric_value(value: Any) -> float:
    if isinstance(value, Mapping):
        runs = [_metric_value(v) for v in value.values()]
        if not runs:
            raise TypeError("empty mapping of runs")
        return float(np.mean(runs))
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


class RobBench201(TableBench):
    """NAS-RobBench-201 under ``root``."""

    name = "NAS-RobBench-201"

    def __init__(self, root: str | Path) -> None:
        self.source = BenchSource(root, ORIGIN)
        self._series: dict[tuple[str, str], KeySeries] = {}

    @cached_property
    def meta(self) -> BenchMeta:
        """``meta.json``."""
        label = self.source.describe("meta.json", ())
        return BenchMeta.from_json(self.source.read_json("meta.json", ()), label)

    @cached_property
    def _data(self) -> tuple[Mapping[str, Any], str]:
        label = self.source.describe(DATA_FILE, ())
        data = self.source.read_json(DATA_FILE, ())
        if not isinstance(data, Mapping) or not data:
            raise DataError(f"{label}: expected {{dataset: {{id: {{metric: value}}}}}}")
        return data, label

    @property
    def datasets(self) -> tuple[str, ...]:  # type: ignore[override]
        """The datasets present in the data file."""
        return tuple(self._data[0])

    def _layout(self, dataset: str) -> dict[str, list[tuple[float | None, str]]]:
        """``{key: [(ε or None, metric name), ...]}`` from the metric names of the first id."""
        data, label = self._data
        block = data[self.check_dataset(dataset)]
        if not isinstance(block, Mapping) or not block:
            raise DataError(f"{label}: {dataset} must map ids to metrics")
        first = next(iter(block.values()))
        if not isinstance(first, Mapping):
            raise DataError(f"{label}: {dataset}: each id must map metric names to values")
        layout: dict[str, list[tuple[float | None, str]]] = {}
        for metric in first:
            m = _LEVELLED.match(metric)
            if m:
                layout.setdefault(m["key"], []).append((float(m["eps"]), metric))
                continue
            m = _SCALAR.match(metric)
            if m:
                layout.setdefault(m["key"], []).append((None, metric))
        for entries in layout.values():
            entries.sort(key=lambda e: -1.0 if e[0] is None else e[0])
        return layout

    def keys(self, dataset: str) -> list[str]:
        """Keys found in the metric names (``val_clean``, ``val_pgd``, ...)."""
        return sorted(self._layout(dataset))

    def clean_key(self, dataset: str) -> str:
        """``val_clean`` when present (else the first scalar key)."""
        layout = self._layout(dataset)
        if "val_clean" in layout:
            return "val_clean"
        scalar = [k for k, e in sorted(layout.items()) if e[0][0] is None]
        return scalar[0] if scalar else sorted(layout)[0]

    def available_keys(self, dataset: str, measure: str = "accuracy") -> list[str]:
        """All keys (one file holds everything)."""
        return self.keys(dataset)

    def series(self, dataset: str, key: str, measure: str = "accuracy") -> KeySeries:
        """All cells' accuracies for ``key``."""
        self.check_measure(measure)
        layout = self._layout(dataset)
        if key not in layout:
            raise UsageError(f"unknown key {key!r} (choose from: {', '.join(sorted(layout))})")
        if (dataset, key) in self._series:
            return self._series[(dataset, key)]
        data, label = self._data
        entries = layout[key]
        if any(eps is None for eps, _ in entries) and len(entries) > 1:
            raise DataError(f"{label}: {key} has both a plain and an ε-indexed metric")
        meta = self.meta
        ids, rows = [], []
        for raw_id, metrics in data[dataset].items():
            arch = _id(raw_id, label)
            if arch not in meta.strings:
                raise DataError(f"{label}: id {arch} is not in meta.json")
            try:
                rows.append([_metric_value(metrics[name]) for _, name in entries])
            except (KeyError, TypeError) as exc:
                raise DataError(f"{label}: {dataset} id {raw_id}: bad or missing metric "
                                f"({exc})") from None
            ids.append(arch)
        values = np.asarray(rows, dtype=np.float64)
        if entries[0][0] is None:
            series = KeySeries(dataset, key, measure, tuple(ids), values[:, 0], None, "", label)
        else:
            levels = tuple(float(eps) for eps, _ in entries)  # type: ignore[arg-type]
            series = KeySeries(dataset, key, measure, tuple(ids), values, levels,
                               "eps (1/255)", label)
        self._series[(dataset, key)] = series
        return series
