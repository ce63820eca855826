"""Retraining checkpoints: ``last.pt`` (to continue) and ``best.pt`` (by the chosen metric).

Both are plain dicts (tensors and plain Python only, loadable with ``weights_only=True``)
written atomically with :func:`robustnas.io.atomic_torch_save`::

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

from robustnas.errors import CheckpointError
from robustnas.io import atomic_torch_save, load_checkpoint

CHECKPOINT_FORMAT = "robustnas-retrain-checkpoint"
CHECKPOINT_VERSION = 1
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
REQUIRED_KEYS = ("model", "config", "dataset", "objective", "epoch", "step", "optimizer",
                 "scheduler", "rng")


def save_train_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (with format/version tags) atomically."""
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state},
                      path)


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A run directory means its ``last.pt``; a file is taken as it is."""
    path = Path(path)
    return path / LAST_NAME if path.is_dir() else path


def load_train_state(path: str | Path) -> dict[str, Any]:
    """Load a retraining checkpoint (``weights_only=True``) and check its format."""
    path = resolve_checkpoint_path(path)
    state = load_checkpoint(path)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a robustnas retraining checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: unsupported retraining checkpoint version "
                              f"{state.get('version')!r}")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: retraining checkpoint is missing {', '.join(missing)}")
    return state
