"""Reader of NAS-RobBench-201 (Wu et al., ICLR 2024): NAS-Bench-201 cells adversarially trained.

Our own MIT code (the authors' helper ``nasrobbench201.py`` was read for the field names; it
is not used). Layout under the root: ``meta.json`` (same ``ids`` format as the robustness
dataset, no epsilons) and ``NAS-RobBench-201_all.json`` = ``{dataset: {id: {metric: {run:
value}}}}``. Metric names are those the authors' training script logs:

* ``val_acc``: clean accuracy (logged with no attack); it becomes the key ``val_clean``
  (``val_acc`` is accepted as its alias, and so is an older ``val_clean_acc``). Every
  ``<split>_acc`` becomes ``<split>_clean`` the same way (``train_acc`` → ``train_clean``).
* ``val_pgd_3.0_acc``, ``val_fgsm_8.0_acc``, ...: the attack and ε (in 1/255) are grouped
  into keys (``val_pgd`` with levels ε = 3.0, 8.0, ...).
* Any other ``<name>_acc`` is the key ``<name>``. Such a key is never taken for clean
  accuracy: without ``val_acc`` :meth:`RobBench201.clean_key` refuses and asks for one.

Runs: the authors' reader returns run ``'1'`` of each metric, so we do too (``run="1"``);
``run="mean"`` averages every run present instead, and ``run="2"`` etc. picks another. A
value that is a plain number is taken as it is. This format is inferred from the authors'
public code and README, not from a specification: see the README.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from robustnas.errors import DataError, UsageError
from robustnas.tables.base import BENCHMARKS, KeySeries, TableBench
from robustnas.tables.meta import BenchMeta, _id
from robustnas.tables.source import BenchSource

ORIGIN = "NAS-RobBench-201 (Wu et al. 2024)"
DATA_FILE = "NAS-RobBench-201_all.json"
CLEAN_KEY = "val_clean"
ALIASES = {"val_acc": CLEAN_KEY}
"""Other names accepted for a key: the authors' own metric name of clean accuracy."""
DEFAULT_RUN = "1"
"""The run the authors' reader returns (``get_result`` reads ``[metric]['1']``)."""
_LEVELLED = re.compile(r"^(?P<key>.+?)_(?P<eps>\d+(?:\.\d+)?)_acc$")
_CLEAN = re.compile(r"^(?P<split>[A-Za-z0-9]+)(?:_clean)?_acc$")
_SCALAR = re.compile(r"^(?P<key>.+)_acc$")


def _metric_value(value: Any, run: str) -> float:
    """The number of one metric: run ``run`` of a ``{run: value}`` mapping (or the mean of
    all its runs for ``run="mean"``), or a plain number as it is."""
    if isinstance(value, Mapping):
        if run == "mean":
            runs = [_metric_value(v, run) for v in value.values()]
            if not runs:
                raise TypeError("empty mapping of runs")
            return float(np.mean(runs))
        if run not in value:
            raise TypeError(f"no run {run!r} (runs: {', '.join(map(str, value)) or 'none'}; "
                            f"run='mean' averages them)")
        return _metric_value(value[run], run)
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


@BENCHMARKS.register("nas-robbench-201")
class RobBench201(TableBench):
    """NAS-RobBench-201 under ``root``; ``run`` is the run read from each metric (``"1"``,
    as the authors' reader does, or ``"mean"`` for the mean over all runs)."""

    name = "NAS-RobBench-201"

    def __init__(self, root: str | Path, run: str | int = DEFAULT_RUN) -> None:
        run = str(run).strip()
        if not run or (run != "mean" and not run.isdigit()):
            raise UsageError(f"run must be a run number such as 1 or 'mean', got {run!r}")
        self.run = run
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
            m = _CLEAN.match(metric)  # val_acc (the authors' name) or val_clean_acc
            if m:
                layout.setdefault(f"{m['split']}_clean", []).append((None, metric))
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
        """``val_clean`` (the authors' ``val_acc``). Without it a DataError: another scalar
        key (a corruption, a training split) must not silently rank cells as "clean"."""
        layout = self._layout(dataset)
        if CLEAN_KEY not in layout:
            raise DataError(f"{self._data[1]}: {dataset} has no clean accuracy (metric "
                            f"val_acc); keys: {', '.join(sorted(layout))} (name one, e.g. "
                            f"correlate --clean-key)")
        return CLEAN_KEY

    def available_keys(self, dataset: str, measure: str = "accuracy") -> list[str]:
        """All keys (one file holds everything)."""
        return self.keys(dataset)

    def series(self, dataset: str, key: str, measure: str = "accuracy") -> KeySeries:
        """All cells' accuracies for ``key``."""
        self.check_measure(measure)
        layout = self._layout(dataset)
        key = ALIASES.get(key, key)
        if key not in layout:
            raise UsageError(f"unknown key {key!r} (choose from: {', '.join(sorted(layout))})")
        if (dataset, key) in self._series:
            return self._series[(dataset, key)]
        data, label = self._data
        entries = layout[key]
        if any(eps is None for eps, _ in entries) and len(entries) > 1:
            raise DataError(f"{label}: {key} comes from several metrics "
                            f"({', '.join(name for _, name in entries)})")
        meta = self.meta
        ids, rows = [], []
        for raw_id, metrics in data[dataset].items():
            arch = _id(raw_id, label)
            if arch not in meta.strings:
                raise DataError(f"{label}: id {arch} is not in meta.json")
            try:
                rows.append([_metric_value(metrics[name], self.run) for _, name in entries])
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
