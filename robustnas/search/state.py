"""The search checkpoint: everything needed to continue a search exactly.

Written and checked by :mod:`robustnas.checkpoints` (format ``robustnas-search-checkpoint``,
version 1); a run directory means its ``checkpoint.pt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustnas.checkpoints import CheckpointKind, load_tagged, save_tagged

CHECKPOINT_FORMAT = "robustnas-search-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
REQUIRED_KEYS = ("model", "config", "epoch", "step", "w_optimizer", "arch_optimizer",
                 "scheduler", "rng")
SEARCH_CHECKPOINT = CheckpointKind(CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "search",
                                   REQUIRED_KEYS, CHECKPOINT_NAME)


def save_search_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus format/version tags) atomically."""
    save_tagged(path, SEARCH_CHECKPOINT, state)


def load_search_state(path: str | Path) -> dict[str, Any]:
    """Load a search checkpoint (``weights_only=True``) and check its format."""
    return load_tagged(path, SEARCH_CHECKPOINT)
