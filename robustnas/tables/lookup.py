"""Where a cell stands in the table: its numbers and ranks among all evaluated cells.

Used at the end of a differentiable NB201 search (``search_lookup``) and by
``robustnas table query --ranks``, so that a found cell's robustness is known without
training it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustnas.errors import RobustnasError
from robustnas.tables.base import TableBench


def rank_lines(bench: TableBench, arch: Any, dataset: str,
               keys: list[str] | None = None, measure: str = "accuracy") -> list[str]:
    """One line per key (and ε): value and rank among all evaluated cells."""
    result = bench.query(arch, dataset, keys, measure)
    lines = [f"{result.string} (id {result.arch_id}, evaluated as {result.representative}) "
             f"on {dataset}:"]
    for key, levels, values in result.entries:
        if levels is None:
            r, n = bench.rank(arch, dataset, key, None, measure)
            lines.append(f"  {key}: {values:.4f} (rank {r}/{n})")
            continue
        parts = []
        for level, value in zip(levels, values):
            r, n = bench.rank(arch, dataset, key, level, measure)
            parts.append(f"{level:g}: {value:.4f} (#{r})")
        lines.append(f"  {key} [{result.level_names[key]}, rank of {n}]: " + "  ".join(parts))
    return lines


def search_lookup(genotype: Any, bench_root: str | Path, dataset: str,
                  bench: str = "robustness") -> list[str]:
    """The table lines of a searched cell, or one line saying why there are none."""
    from robustnas.tables import open_bench

    try:
        table = open_bench(bench_root, bench)
        return rank_lines(table, genotype, dataset, table.default_keys(dataset) or None)
    except RobustnasError as exc:
        return [f"table lookup skipped: {exc}"]


def write_search_lookup(genotype: Any, config: Any, run_dir: Path) -> list[str]:
    """Print the found cell's table lines to stderr and save them as ``table_lookup.txt``."""
    import sys

    from robustnas.io import atomic_write_text

    lines = search_lookup(genotype, config.bench_root, config.bench_dataset)
    print("\n".join(["table lookup (no training needed):", *lines]), file=sys.stderr)
    atomic_write_text(Path(run_dir) / "table_lookup.txt", "\n".join(lines) + "\n")
    return lines
