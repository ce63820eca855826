"""What every tabular robustness benchmark offers: per-key series and architecture queries.

A :class:`KeySeries` holds one (dataset, key, measure) for all evaluated cells as a numpy
array, so a question about all 6,466 cells is one vectorised operation. A benchmark reader
(:class:`TableBench` subclass) only says how to find keys and build series; querying one
architecture, resolving isomorphs and listing the numbers are shared here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustnas.errors import DataError, UsageError
from robustnas.registry import Registry
from robustnas.tables.meta import BenchMeta


@dataclass(frozen=True)
class KeySeries:
    """One key of one dataset for every evaluated cell.

    ``values`` is ``(cells,)`` for a scalar key (clean accuracy) or ``(cells, len(levels))``
    for a key evaluated at several levels (ε in units of 1/255 for attacks, severity for
    corruptions); ``ids`` are the representative ids of the rows; ``source`` the file read.
    """

    dataset: str
    key: str
    measure: str
    ids: tuple[str, ...]
    values: np.ndarray
    levels: tuple[float, ...] | None
    level_name: str
    source: str
    row: dict[str, int] = field(repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.row:
            self.row.update({i: n for n, i in enumerate(self.ids)})

    def of(self, rep_id: str) -> float | list[float]:
        """The value(s) of representative ``rep_id``."""
        try:
            v = self.values[self.row[rep_id]]
        except KeyError:
            raise DataError(f"architecture {rep_id} has no {self.key} {self.measure} in "
                            f"{self.source}") from None
        return float(v) if v.ndim == 0 else [float(x) for x in v]

    def column(self, level: float | None = None) -> np.ndarray:
        """``(cells,)`` values: the scalar key, or the key at ``level`` (ε or severity)."""
        if self.values.ndim == 1:
            if level is not None:
                raise UsageError(f"{self.key} has no {self.level_name} levels")
            return self.values
        if level is None:
            raise UsageError(f"{self.key} needs a {self.level_name} (one of "
                             f"{', '.join(f'{x:g}' for x in self.levels or ())})")
        levels = self.levels or ()
        matches = [n for n, x in enumerate(levels) if abs(x - float(level)) < 1e-9]
        if not matches:
            raise UsageError(f"{self.key}: no {self.level_name} {level:g} (choose from "
                             f"{', '.join(f'{x:g}' for x in levels)})")
        return self.values[:, matches[0]]


@dataclass(frozen=True)
class ArchResult:
    """The numbers of one architecture: ``entries`` are ``(key, levels, values)``."""

    arch_id: str
    representative: str
    string: str
    dataset: str
    measure: str
    entries: tuple[tuple[str, tuple[float, ...] | None, Any], ...]
    level_names: dict[str, str]

    def value(self, key: str, level: float | None = None) -> float:
        """One number: ``key`` (at ``level`` for multi-level keys)."""
        for k, levels, values in self.entries:
            if k != key:
                continue
            if levels is None:
                return float(values)
            for x, v in zip(levels, values):
                if abs(x - float(level if level is not None else float("nan"))) < 1e-9:
                    return float(v)
            raise UsageError(f"{key}: no level {level!r} (choose from {list(levels)})")
        raise UsageError(f"key {key!r} was not queried")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.arch_id, "representative": self.representative,
                "arch": self.string, "dataset": self.dataset, "measure": self.measure,
                "results": {k: ({"levels": list(lv), "level_name": self.level_names[k],
                                 "values": v} if lv is not None else v)
                            for k, lv, v in self.entries}}


class TableBench(ABC):
    """A tabular benchmark (NAS-Bench-201 cells unless :attr:`space` says otherwise)."""

    name = "benchmark"
    datasets: tuple[str, ...] = ()
    measures: tuple[str, ...] = ("accuracy",)
    #: The space of the benchmark's architectures (:mod:`robustnas.tables.candidates`).
    space = "nb201"
    #: The objective key of ``table search`` when none is given.
    search_key = "pgd@Linf"

    @property
    @abstractmethod
    def meta(self) -> BenchMeta:
        """The parsed meta data (ids, strings, isomorphs)."""

    @abstractmethod
    def keys(self, dataset: str) -> list[str]:
        """Every key this benchmark can hold for ``dataset``."""

    @abstractmethod
    def available_keys(self, dataset: str, measure: str = "accuracy") -> list[str]:
        """Keys whose data is present under the root (checked without reading the data)."""

    @abstractmethod
    def series(self, dataset: str, key: str, measure: str = "accuracy") -> KeySeries:
        """All cells' values of ``key`` (read on first use, then cached)."""

    def clean_key(self, dataset: str) -> str:
        """The key holding clean accuracy (ranks the top-k, second NSGA-II objective)."""
        return "clean"

    def default_keys(self, dataset: str) -> list[str]:
        """Keys correlated and shown by default: clean accuracy and the attacks present."""
        return self.available_keys(dataset)

    def check_dataset(self, dataset: str) -> str:
        """``dataset`` if this benchmark has it, else a UsageError listing the choices."""
        if dataset not in self.datasets:
            raise UsageError(f"unknown {self.name} dataset {dataset!r} (choose from: "
                             f"{', '.join(self.datasets)})")
        return dataset

    def check_measure(self, measure: str) -> str:
        """``measure`` if it can be queried, else a UsageError."""
        if measure not in self.measures:
            raise UsageError(f"unknown measure {measure!r} (choose from: "
                             f"{', '.join(self.measures)})")
        return measure

    def query(self, arch: Any, dataset: str, keys: Sequence[str] | None = None,
              measure: str = "accuracy") -> ArchResult:
        """The numbers of ``arch`` (id, NAS-Bench-201 string or genotype; isomorphic cells
        map to their evaluated representative) for ``keys`` (default: all present keys)."""
        self.check_dataset(dataset)
        self.check_measure(measure)
        arch_id, rep = self.meta.resolve(arch)
        if keys is None:
            keys = self.available_keys(dataset, measure)
            if not keys:
                # Reading the first key raises the one-line "missing file" message.
                keys = self.keys(dataset)[:1]
        entries = []
        level_names = {}
        for key in keys:
            s = self.series(dataset, key, measure)
            entries.append((key, s.levels, s.of(rep)))
            level_names[key] = s.level_name
        return ArchResult(arch_id, rep, self.meta.strings[arch_id], dataset, measure,
                          tuple(entries), level_names)

    def rank(self, arch: Any, dataset: str, key: str, level: float | None = None,
             measure: str = "accuracy") -> tuple[int, int]:
        """``(rank, cells)``: 1 + how many evaluated cells score strictly higher on ``key``."""
        _, rep = self.meta.resolve(arch)
        ids, values = self.column(dataset, key, level, measure)
        mine = values[ids.index(rep)] if rep in ids else float("nan")
        if not np.isfinite(mine):
            raise DataError(f"architecture {rep} has no {key} value")
        return int(np.sum(values > mine)) + 1, len(ids)

    def column(self, dataset: str, key: str, level: float | None = None,
               measure: str = "accuracy") -> tuple[tuple[str, ...], np.ndarray]:
        """``(representative ids, values)`` of every evaluated cell for one key (and level)."""
        s = self.series(self.check_dataset(dataset), key, self.check_measure(measure))
        return s.ids, s.column(level)


#: The readers by name (``--bench``): each module of :mod:`robustnas.tables` may register one
#: with ``@BENCHMARKS.register("name")``; they are imported on the first lookup of a name not
#: registered yet (so the modules of this package must not import PyTorch at import time:
#: ``robustnas table query`` runs without it).
BENCHMARKS: Registry[type[TableBench]] = Registry("tabular benchmark",
                                                  discover=("robustnas.tables",))
