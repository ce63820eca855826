"""How far the quickstart's warm-up weights drift apart with 1 and 2 CPU threads.

``python experiments/thread_drift.py float32|float64 STEPS``: builds the quickstart's
seeded supernet and search split as the search does, takes ``STEPS`` SGD weight steps
(lr 0.05, momentum 0.9, weight decay 3e-4) once with ``torch.set_num_threads(1)`` and once
with 2, and prints after each step the largest difference of a weight. Figures:
experiments/BENCHMARKS.md, "Quickstart stability" (issue 20 item 2).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

from robustnas.distributed import dist_info_from_env
from robustnas.runtime import seed_everything
from robustnas.search import SearchConfig
from robustnas.search.data import load_search_data
from robustnas.search.setup import build_supernet

CONFIG = Path(__file__).resolve().parent / "configs" / "quickstart.yaml"


def weights_per_step(precision: str, threads: int, steps: int) -> list[list[torch.Tensor]]:
    """The supernet's weights after each of ``steps`` steps with ``threads`` threads."""
    torch.set_num_threads(threads)
    options = {**yaml.safe_load(CONFIG.read_text()), "out": "/tmp/thread_drift",
               "precision": precision}
    config = SearchConfig(**options)
    dtype = getattr(torch, precision)
    seed_everything(0)
    data = load_search_data(config, torch.device("cpu"), dist_info_from_env())
    model = build_supernet(config, data).to(dtype)
    optimizer = torch.optim.SGD(model.weights(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    snapshots = []
    batches = iter(data.train)
    for _ in range(steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(data.train)
            x, y = next(batches)
        loss = torch.nn.functional.cross_entropy(model(x.to(dtype)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        snapshots.append([w.detach().clone() for w in model.weights()])
    return snapshots


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("float32", "float64"):
        sys.exit(__doc__)
    one, two = (weights_per_step(sys.argv[1], t, int(sys.argv[2])) for t in (1, 2))
    for step, (a, b) in enumerate(zip(one, two), start=1):
        print(step, f"{max((x - y).abs().max().item() for x, y in zip(a, b)):.2e}")
