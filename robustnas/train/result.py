"""What a finished retraining run returns to Python callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn


@dataclass
class RetrainResult:
    """Paths and metrics of a finished run, and the trained network itself.

    ``final`` is the last epoch's record (training metrics, lr, throughput, held-out
    metrics when evaluated); ``heldout`` the last held-out evaluation; ``best`` the
    ``{"metric", "value", "epoch"}`` of ``best.pt`` (``best_checkpoint`` is None when no
    evaluation ran). ``selection`` describes the split ``best.pt`` was selected on
    (:func:`robustnas.train.heldout.selection_split`). ``model`` is the unwrapped network,
    on the training device.
    """

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    summary_path: Path
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    heldout: dict[str, float] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    model: nn.Module | None = None
    rank: int = 0
    selection: dict[str, Any] = field(default_factory=dict)
