"""Does the quickstart's cell depend on the thread count? (issue 20 item 2)

``run OUT JSON``: one quickstart search (``experiments/configs/quickstart.yaml`` with the
overrides in ``JSON``), saving softmax(α), the supernet weights, the decisiveness and the
genotype after every epoch under ``OUT`` (also under ``torchrun``: rank 0 saves).
``compare A B``: per epoch, the largest difference of the weights and of softmax(α), the
matching edges of the two genotypes (of 16) and both decisiveness verdicts; one JSON line
per epoch. Commands and figures: experiments/BENCHMARKS.md ("Quickstart stability").
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from robustnas.search import SearchConfig
from robustnas.search.agreement import matching_edges
from robustnas.search.searcher import Searcher
from robustnas.space.decisiveness import model_decisiveness

CONFIG = Path(__file__).resolve().parent / "configs" / "quickstart.yaml"


class _Recording(Searcher):
    """Saves what :func:`compare` reads after every epoch (rank 0)."""

    def _end_epoch(self) -> str | None:
        stopped = super()._end_epoch()
        if self.dist.is_main:
            out = Path(self.config.out)
            probs = self.model.alpha_softmax()
            torch.save({k: v.detach().clone() for k, v in probs.items()},
                       out / f"softmax_epoch{self.epoch}.pt")
            torch.save([w.detach().clone() for w in self.model.weights()],
                       out / f"weights_epoch{self.epoch}.pt")
            decided = model_decisiveness(self.model)
            with open(out / "verdicts.jsonl", "a") as f:
                f.write(json.dumps({"epoch": self.epoch, "verdict": decided.verdict,
                                    "median_op_margin": decided.median_op_margin,
                                    "genotype": self.model.genotype().to_dict()}) + "\n")
        return stopped


def run(out: Path, changes: dict[str, Any]) -> None:
    """One recorded quickstart search into ``out``."""
    options = yaml.safe_load(CONFIG.read_text())
    options.update(changes, out=str(out))
    start = time.perf_counter()
    result = _Recording(SearchConfig(**options), show_progress=False).run()
    if result.rank == 0:
        (out / "wall.json").write_text(json.dumps(
            {"seconds": time.perf_counter() - start, "options": options}))


def compare(a: Path, b: Path) -> list[dict[str, Any]]:
    """Per-epoch differences between two recorded runs (see the module docstring)."""
    rows = []
    records = [[json.loads(line) for line in open(run / "verdicts.jsonl")] for run in (a, b)]
    for ra, rb in zip(*records):
        epoch = ra["epoch"]
        pa, pb = (torch.load(r / f"softmax_epoch{epoch}.pt", weights_only=True) for r in (a, b))
        wa, wb = (torch.load(r / f"weights_epoch{epoch}.pt", weights_only=True) for r in (a, b))
        rows.append({
            "epoch": epoch,
            "max_weight_difference": max((x - y).abs().max().item() for x, y in zip(wa, wb)),
            "max_softmax_difference": max((pa[k] - pb[k]).abs().max().item() for k in pa),
            "matching_edges": matching_edges(ra["genotype"], rb["genotype"]),
            "median_op_margins": [ra["median_op_margin"], rb["median_op_margin"]],
            "verdicts": [ra["verdict"], rb["verdict"]]})
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run(Path(sys.argv[2]), json.loads(sys.argv[3]))
    elif sys.argv[1:2] == ["compare"]:
        for row in compare(Path(sys.argv[2]), Path(sys.argv[3])):
            print(json.dumps(row))
    else:
        sys.exit(__doc__)
