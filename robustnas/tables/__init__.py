"""Tabular robustness benchmarks.

- :class:`RobustnessBench`: the robustness dataset of Jung et al. (ICLR 2023), NAS-Bench-201,
- :class:`RobBench201`: NAS-RobBench-201 (Wu et al., ICLR 2024), NAS-Bench-201,
- :class:`NAResBench`: NARes (Lu et al.), WideResNets with per-stage depth and width,

all answering :meth:`~robustnas.tables.base.TableBench.query` (one architecture) and
:meth:`~robustnas.tables.base.TableBench.column` (all cells, one key) the same way.
"""

from __future__ import annotations

from pathlib import Path

from robustnas.errors import UsageError
from robustnas.tables.base import BENCHMARKS, ArchResult, KeySeries, TableBench

# public names; each reader registers itself in BENCHMARKS, found without these imports
from robustnas.tables.nares import NAResBench
from robustnas.tables.robbench import RobBench201
from robustnas.tables.robustness import RobustnessBench


def open_bench(root: str | Path, bench: str = "robustness", run: str | None = None) -> TableBench:
    """The benchmark ``bench`` (``robustness``, ``nas-robbench-201`` or ``nares``) stored
    under ``root``.

    ``run`` (NAS-RobBench-201 only, which stores several training runs per metric): ``"1"``
    (the default, as the authors' reader) or ``"mean"`` over all runs.
    """
    cls = BENCHMARKS.get(bench)
    if run is None:
        return cls(root)
    if cls is not RobBench201:
        raise UsageError(f"--run applies to nas-robbench-201 only (the {cls.name} has one "
                         f"value per cell)")
    return RobBench201(root, run)


def query_architecture(arch: object, root: str | Path, dataset: str = "cifar10",
                       keys: list[str] | None = None, measure: str = "accuracy",
                       bench: str = "robustness") -> ArchResult:
    """The tabulated numbers of ``arch`` (id, the bench's string form or a genotype)."""
    return open_bench(root, bench).query(arch, dataset, keys, measure)


__all__ = ["BENCHMARKS", "ArchResult", "KeySeries", "NAResBench", "RobBench201",
           "RobustnessBench", "TableBench", "open_bench", "query_architecture"]
