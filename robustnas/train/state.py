"""Retraining checkpoints: ``last.pt`` (to continue) and ``best.pt`` (by the chosen metric).

Both are plain dicts (tensors and plain Python only, loadable with ``weights_only=True``)
written atomically and checked on loading by :mod:`robustnas.checkpoints`::

    format, version      "robustnas-retrain-checkpoint", 1
    model                robustnas.space.models.model_payload(net) (rebuilds the network)
    dataset              {"name", "root", "options"}
    objective            "none" | "pgd" | "trades" | "fgsm-rs"
    epoch, step          completed epochs, and batches completed in epoch ``epoch``
    optimizer, scheduler state dicts
    rng                  torch CPU / CUDA / NumPy / Python RNG states of rank 0
    rng_per_rank         every process's RNG states (distributed runs only)
    world_size           number of processes of the run
    config               the resolved RetrainConfig as a plain dict
    best                 {"metric", "value", "epoch"} (value None before any evaluation)
    metrics              held-out metrics of the last evaluation (best.pt: of that epoch)
    history              one record per completed epoch
    meters               running sums of the epoch in progress (for its log line)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustnas.checkpoints import CheckpointKind, load_tagged, save_tagged

CHECKPOINT_FORMAT = "robustnas-retrain-checkpoint"
CHECKPOINT_VERSION = 1
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
REQUIRED_KEYS = ("model", "config", "dataset", "objective", "epoch", "step", "optimizer",
                 "scheduler", "rng")
TRAIN_CHECKPOINT = CheckpointKind(CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "retraining",
                                  REQUIRED_KEYS, LAST_NAME, list_missing=True)


def save_train_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (with format/version tags) atomically."""
    save_tagged(path, TRAIN_CHECKPOINT, state)


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A run directory means its ``last.pt``; a file is taken as it is."""
    return TRAIN_CHECKPOINT.resolve(path)


def load_train_state(path: str | Path) -> dict[str, Any]:
    """Load a retraining checkpoint (``weights_only=True``) and check its format."""
    return load_tagged(path, TRAIN_CHECKPOINT)
