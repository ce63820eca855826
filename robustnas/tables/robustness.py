"""Reader of the NAS-Bench-201 robustness dataset (Jung, Lukasik & Keuper, ICLR 2023).

Our own MIT code, written from the published description of the format (the authors' helper
is GPL-3.0 and is not used). Layout under the root, extracted or zipped::

    meta.json                                  (or inside meta.zip)
    <dataset>/<key>_<measure>.json             (or inside <dataset>-accuracies.zip / <dataset>.zip)

Each data file is ``{dataset: {key: {measure: {id: value}}}}``: a scalar per id for
``clean``, a list aligned with ``meta["epsilons"][key]`` (ε in units of 1/255) for attacks.
Corruption values may be a scalar or a list over severities. Only the files a query needs
are read; each is parsed once into a :class:`~robustnas.tables.base.KeySeries`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from robustnas.errors import DataError, UsageError
from robustnas.tables.base import BENCHMARKS, KeySeries, TableBench
from robustnas.tables.meta import BenchMeta, _id
from robustnas.tables.source import BenchSource

ORIGIN = "the robustness dataset of Jung et al. 2023 (http://data.robustness.vision/)"
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
CLEAN_KEY = "clean"
ATTACK_KEYS = ("fgsm@Linf", "pgd@Linf", "aa_apgd-ce@Linf", "aa_square@Linf")
CORRUPTION_KEYS = ("brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost",
                   "gaussian_noise", "glass_blur", "impulse_noise", "jpeg_compression",
                   "motion_blur", "pixelate", "shot_noise", "snow", "zoom_blur")
CORRUPTED_DATASETS = ("cifar10", "cifar100")
"""Datasets with corruption results (CIFAR-10-C, CIFAR-100-C); ImageNet16-120 has none."""
MEASURES = ("accuracy", "confidence")
"""Queryable measures; ``cm`` (confusion matrices, large files) is never read."""


def _number(value: Any) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


@BENCHMARKS.register("robustness")
class RobustnessBench(TableBench):
    """The robustness dataset under ``root``; see the module docstring for the layout."""

    name = "robustness dataset"
    datasets = DATASETS
    measures = MEASURES

    def __init__(self, root: str | Path) -> None:
        self.source = BenchSource(root, ORIGIN)
        self._series: dict[tuple[str, str, str], KeySeries] = {}

    @cached_property
    def meta(self) -> BenchMeta:
        """``meta.json`` (read on first use)."""
        label = self.source.describe("meta.json", ("meta.zip",))
        return BenchMeta.from_json(self.source.read_json("meta.json", ("meta.zip",)), label)

    def keys(self, dataset: str) -> list[str]:
        """``clean``, the four attacks and (CIFAR-10/100 only) the 15 corruptions."""
        corruptions = CORRUPTION_KEYS if dataset in CORRUPTED_DATASETS else ()
        return [CLEAN_KEY, *ATTACK_KEYS, *corruptions]

    @staticmethod
    def relpath(dataset: str, key: str, measure: str) -> str:
        """The data file of (dataset, key, measure), relative to the root."""
        return f"{dataset}/{key}_{measure}.json"

    @staticmethod
    def archives(dataset: str) -> tuple[str, str]:
        """The zips that distribute ``dataset``'s files."""
        return (f"{dataset}-accuracies.zip", f"{dataset}.zip")

    def available_keys(self, dataset: str, measure: str = "accuracy") -> list[str]:
        """Keys whose file exists (extracted or in a zip); nothing is parsed."""
        present = []
        for key in self.keys(dataset):
            try:
                self.source.locate(self.relpath(dataset, key, measure), self.archives(dataset))
            except DataError:
                continue
            present.append(key)
        return present

    def default_keys(self, dataset: str) -> list[str]:
        """``clean`` and the four attacks, those present."""
        present = self.available_keys(dataset)
        return [k for k in (CLEAN_KEY, *ATTACK_KEYS) if k in present]

    def series(self, dataset: str, key: str, measure: str = "accuracy") -> KeySeries:
        """All evaluated cells' values of ``key`` (one file read, then cached)."""
        self.check_dataset(dataset)
        self.check_measure(measure)
        if key in CORRUPTION_KEYS and dataset not in CORRUPTED_DATASETS:
            raise UsageError(f"{dataset} has no corruption results in the robustness dataset "
                             f"(only {', '.join(CORRUPTED_DATASETS)} do)")
        if key not in self.keys(dataset):
            raise UsageError(f"unknown key {key!r} (choose from: {', '.join(self.keys(dataset))})")
        cache_key = (dataset, key, measure)
        if cache_key not in self._series:
            meta = self.meta  # read meta first so its errors come first
            rel = self.relpath(dataset, key, measure)
            label = self.source.describe(rel, self.archives(dataset))
            data = self.source.read_json(rel, self.archives(dataset))
            self._series[cache_key] = self._parse(data, dataset, key, measure, label, meta)
        return self._series[cache_key]

    @staticmethod
    def _parse(data: Any, dataset: str, key: str, measure: str, label: str,
               meta: BenchMeta) -> KeySeries:
        node = data
        for level, name in (("dataset", dataset), ("key", key), ("measure", measure)):
            if not isinstance(node, Mapping) or name not in node:
                raise DataError(f"{label}: expected {{dataset: {{key: {{measure: "
                                f"{{id: value}}}}}}}} with {level} {name!r}")
            node = node[name]
        if not isinstance(node, Mapping) or not node:
            raise DataError(f"{label}: {dataset}/{key}/{measure} must map ids to values")
        ids = []
        rows = []
        try:
            for raw_id, value in node.items():
                ids.append(_id(raw_id, label))
                rows.append(_number(value) if not isinstance(value, list)
                            else [_number(v) for v in value])
        except TypeError as exc:
            raise DataError(f"{label}: id {raw_id!r}: {exc}") from None
        scalar = [not isinstance(r, list) for r in rows]
        if all(scalar):
            values = np.asarray(rows, dtype=np.float64)
            levels, level_name = None, ""
        elif any(scalar):
            raise DataError(f"{label}: values mix numbers and lists")
        else:
            lengths = {len(r) for r in rows}  # type: ignore[arg-type]
            if len(lengths) != 1:
                raise DataError(f"{label}: value lists have different lengths {sorted(lengths)}")
            width = lengths.pop()
            values = np.asarray(rows, dtype=np.float64).reshape(len(rows), width)
            if key in meta.epsilons:
                levels = meta.epsilons[key]
                if len(levels) != width:
                    raise DataError(f"{label}: {width} values per id but meta.json lists "
                                    f"{len(levels)} epsilons for {key}")
                level_name = "eps (1/255)"
            elif key in ATTACK_KEYS:
                raise DataError(f"{label}: meta.json has no epsilons for {key}")
            else:
                levels, level_name = tuple(float(s) for s in range(1, width + 1)), "severity"
        unknown = [i for i in ids if i not in meta.strings]
        if unknown:
            raise DataError(f"{label}: id {unknown[0]} is not in meta.json")
        return KeySeries(dataset, key, measure, tuple(ids), values, levels, level_name, label)
