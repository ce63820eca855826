"""The search checkpoint: everything needed to continue a search exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustnas.errors import CheckpointError
from robustnas.io import atomic_torch_save, load_checkpoint

CHECKPOINT_FORMAT = "robustnas-search-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


def save_search_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format/version tags) atomically."""
    atomic_torch_save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, path)


def load_search_state(path: str | Path) -> dict[str, Any]:
    """Load a search checkpoint (``weights_only=True``) and check its format."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    state = load_checkpoint(path)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a robustnas search checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: unsupported search checkpoint version "
                              f"{state.get('version')!r}")
    for key in ("model", "config", "epoch", "step", "w_optimizer", "arch_optimizer",
                "scheduler", "rng"):
        if key not in state:
            raise CheckpointError(f"{path}: search checkpoint is missing {key!r}")
    return state
