"""Search cost of a study's search jobs: wall time per (relaxation, regulariser) group.

``python experiments/search_cost.py STUDY_DIR`` reads every ``searches/<label>/history.json``
of the study (labels ``search-<relaxation>-<regulariser>-s<seed>``), sums each search's
``epoch_seconds`` (training and end-of-epoch work, not start-up) and prints, per group, n,
mean ± sample sd and min-max of the seconds, plus the mean images per second of the
epochs, as a Markdown table. The times are those of the study's workers: compare groups
only within one study run on one machine (the load of the machine is in every figure).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

LABEL = re.compile(r"^search-(?P<group>.+)-s(?P<seed>\d+)$")


def search_costs(study_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """``{group: [(seconds, images_per_second), ...]}`` over the written searches."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for history in sorted((study_dir / "searches").glob("*/history.json")):
        match = LABEL.match(history.parent.name)
        if match is None:
            continue
        epochs = json.loads(history.read_text())
        seconds = sum(float(e.get("epoch_seconds", 0.0)) for e in epochs)
        speed = statistics.mean(float(e.get("images_per_second", 0.0)) for e in epochs)
        groups[match["group"]].append((seconds, speed))
    return dict(groups)


def markdown(groups: dict[str, list[tuple[float, float]]]) -> str:
    """The table :func:`search_costs` describes."""
    lines = ["| relaxation-regulariser | n | search s (mean ± sd) | min-max s | images/s |",
             "|---|---|---|---|---|"]
    for group, runs in sorted(groups.items()):
        seconds = [s for s, _ in runs]
        sd = f"{statistics.stdev(seconds):.1f}" if len(seconds) > 1 else "-"
        lines.append(f"| {group} | {len(runs)} | {statistics.mean(seconds):.1f} ± {sd} | "
                     f"{min(seconds):.1f}-{max(seconds):.1f} | "
                     f"{statistics.mean(v for _, v in runs):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(markdown(search_costs(Path(sys.argv[1]))))
