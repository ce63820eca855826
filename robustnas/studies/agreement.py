"""Stability of a study's searched cells: agreement over the search seeds of each regulariser.

A search source runs one search per (regulariser, search seed), labelled
``search-<regulariser>-s<seed>`` (:mod:`robustnas.studies.sources`). For each regulariser
with its derived genotypes in ``<study>/searches/<label>/genotype.json``, the report gives
the agreement of :func:`robustnas.search.agreement.agreement` (matching edges between the
seeds' cells, the fraction of seeds deriving each edge, the consensus cell) beside each
cell's decisiveness verdict: a decisive cell that another seed does not find again is a
property of that seed, not of the regulariser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from robustnas.search.agreement import agreement

_SEED = re.compile(r"^(?P<group>.+)-s(?P<seed>\d+)$")


def search_agreement(study_dir: Path, labels: Iterable[str]) -> list[dict[str, Any]]:
    """One entry per regulariser among the search ``labels`` whose genotypes are written.

    Each entry: ``group`` (the label without its seed), ``seeds``, ``verdicts`` (each
    seed's decisiveness verdict, ``None`` when its provenance has none), ``runs`` and the
    fields of :meth:`robustnas.search.agreement.Agreement.to_dict`, and ``summary`` (one
    line). Genotypes that cannot be read or are not DARTS cells are left out, and so is a
    group whose cells cannot be compared.
    """
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for label in sorted({str(label) for label in labels}):
        match = _SEED.match(label)
        path = Path(study_dir) / "searches" / label / "genotype.json"
        if match is None or not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            groups.setdefault(match["group"], []).append((int(match["seed"]), data))
    out = []
    for group, runs in sorted(groups.items()):
        runs.sort(key=lambda item: item[0])
        try:
            result = agreement([data for _, data in runs])
        except (ValueError, TypeError):
            continue  # another space's cells (e.g. NAS-Bench-201 strings)
        verdicts = [((data.get("provenance") or {}).get("decisiveness") or {}).get("verdict")
                    for _, data in runs]
        out.append({"group": group, "seeds": [seed for seed, _ in runs],
                    "verdicts": verdicts, **result.to_dict(), "summary": result.summary()})
    return out


def to_markdown(entries: list[dict[str, Any]]) -> str:
    """The study report's section on search agreement ("" when there is nothing to show)."""
    if not entries:
        return ""
    lines = ["## Search agreement", "",
             "Agreement of the cells derived over the search seeds of each regulariser: "
             "matching edges between each pair of seeds (per node, the kept "
             "(operation, input) pairs they share, both cells), the share of pairs with "
             "the same cell, and the consensus cell's support (the mean fraction of seeds "
             "deriving each of its edges; 1 = every seed derived it). Decisiveness: each "
             "seed's verdict (uniform / weak / clear).", "",
             "| search | seeds | decisiveness | matching edges (mean, min-max) | same cell "
             "| consensus support |", "|---|---|---|---|---|---|"]
    for e in entries:
        m = e["matching_edges"]
        matches = ("n/a (1 seed)" if m["mean"] is None
                   else f"{m['mean']:.1f}/{e['edges']} ({m['min']}-{m['max']})")
        same = "n/a" if e["same_cell_fraction"] is None else f"{e['same_cell_fraction']:.0%}"
        verdicts = ", ".join(str(v) for v in e["verdicts"])
        lines.append(f"| {e['group']} | {', '.join(map(str, e['seeds']))} | {verdicts} | "
                     f"{matches} | {same} | {e['consensus_support']:.2f} |")
    lines.append("")
    for e in entries:
        lines.append(f"Edges of {e['group']} derived by fewer than all seeds: "
                     + (", ".join(f"{f['cell']} node {f['node']} ({f['op']}, {f['input']}) "
                                  f"{f['fraction']:.0%}"
                                  for f in e["edge_fractions"] if f["fraction"] < 1)
                        or "none") + ".")
    return "\n".join(lines) + "\n"
