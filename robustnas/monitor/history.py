"""Per-epoch history files of a run: ``history.json`` (every record) and ``history.csv``.

The JSON file holds the epoch records exactly as the run keeps them (nested values such as
the derived genotype included); the CSV file holds one row per epoch and one column per
number or string (nested values are left out; a genotype is written as its one-line text),
for a spreadsheet or ``pandas.read_csv``. Both are rewritten atomically at every epoch end.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robustnas.errors import RobustnasError
from robustnas.io import atomic_write_text


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def history_rows(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns (in order of first appearance) and flat rows for the CSV file."""
    columns: list[str] = []
    rows: list[dict[str, Any]] = []
    for record in records:
        row: dict[str, Any] = {}
        for key, value in record.items():
            if key == "genotype" and isinstance(value, dict):
                from robustnas.space.spaces import genotype_from_any_dict

                try:
                    value = genotype_from_any_dict(value).describe()
                except RobustnasError:  # not a genotype of a known space: keep its JSON
                    value = json.dumps(value, separators=(",", ":"))
            if isinstance(value, (bool, int, float, str)) or value is None:
                row[key] = _cell(value)
                if key not in columns:
                    columns.append(key)
        rows.append(row)
    return columns, rows


def write_history(run_dir: str | Path, records: Sequence[dict[str, Any]],
                  stem: str = "history") -> tuple[Path, Path]:
    """Write ``<run_dir>/<stem>.json`` and ``<stem>.csv``; returns both paths."""
    run_dir = Path(run_dir)
    json_path, csv_path = run_dir / f"{stem}.json", run_dir / f"{stem}.csv"
    atomic_write_text(json_path, json.dumps(list(records), indent=1, default=str) + "\n")
    columns, rows = history_rows(records)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(csv_path, buffer.getvalue())
    return json_path, csv_path
