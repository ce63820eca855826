"""Per-epoch reporting of a retraining run: TensorBoard scalars and one terminal line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from robustnas.engine import Callback
from robustnas.monitor.units import format_rate

# record key -> TensorBoard tag
TAGS = {
    "train_loss": "train/loss",
    "train_clean_loss": "train/clean_loss", "train_clean_acc": "train/clean_acc",
    "train_robust_loss": "train/robust_loss", "train_robust_acc": "train/robust_acc",
    "lr": "schedule/lr", "drop_path": "schedule/drop_path",
    "epoch_seconds": "time/epoch_seconds", "images_per_second": "time/images_per_second",
    "eval_clean_loss": "heldout/clean_loss", "eval_clean_acc": "heldout/clean_acc",
    "eval_robust_loss": "heldout/pgd_loss", "eval_robust_acc": "heldout/pgd_acc",
}


class RetrainLogger:
    """Writes epoch records to TensorBoard (``run_dir``) and a summary line to stderr.

    Disabled loggers (processes other than rank 0) do nothing.
    """

    def __init__(self, run_dir: Path, enabled: bool = True, epochs: int = 0,
                 clean_mode: str = "train") -> None:
        from robustnas.monitor import RunLogger

        self.enabled = enabled
        self.epochs = epochs
        self.clean_mode = clean_mode
        self._explained = False
        self.writer = RunLogger(run_dir, enabled=enabled)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        """Log a text entry (config, architecture) to TensorBoard."""
        if self.enabled:
            self.writer.text(tag, text, step)

    def end_epoch(self, record: dict[str, Any]) -> None:
        """Log one completed epoch's record (keys as produced by the trainer)."""
        if not self.enabled:
            return
        step = int(record["epoch"])
        scalars = {TAGS[k]: float(v) for k, v in record.items()
                   if k in TAGS and v is not None}
        scalars.update({f"train/{k[len('extra_'):]}": float(v) for k, v in record.items()
                        if k.startswith("extra_")})
        self.writer.scalars(scalars, step)
        if not self._explained and record.get("train_robust_acc") is not None \
                and self.clean_mode != "train":
            # Said once: the two training accuracies come from different modes, so clean
            # can read lower than robust (the robust one has batch statistics, drop-path).
            print(f"note: the training line's clean accuracy is measured in "
                  f"{self.clean_mode} mode (running BN statistics, no drop-path) and its "
                  f"robust accuracy in train mode (the training forward, batch statistics), "
                  f"so clean can read lower than robust; the held-out figures are both "
                  f"eval mode", file=sys.stderr)
        self._explained = True
        print(summary_line(record, self.epochs, self.clean_mode), file=sys.stderr, flush=True)

    def close(self) -> None:
        """Flush and close TensorBoard files."""
        self.writer.close()


class EpochCurves(Callback):
    """The built-in monitor of retraining: each epoch's record to TensorBoard and one line on
    stderr, after the epoch's checkpoint (:meth:`RetrainLogger.end_epoch`)."""

    def __init__(self, log: RetrainLogger) -> None:
        self.log = log

    def on_epoch_end(self, task: Any, record: dict[str, Any]) -> None:  # noqa: D102
        self.log.end_epoch(record)


def summary_line(record: dict[str, Any], epochs: int, clean_mode: str = "train") -> str:
    """``epoch 3/200: train loss … clean … robust … | held-out clean … pgd … | lr … | img/s``.

    When the clean and robust training accuracies come from different modes (``clean_mode``
    ``eval``: PGD and FGSM-RS measure clean accuracy in a separate eval-mode forward), each
    is tagged with its mode, so that a clean figure below the robust one is not a puzzle.
    """
    robust = record.get("train_robust_acc") is not None
    tags = (f" [{clean_mode} mode]", " [train mode]") if robust and clean_mode != "train" \
        else ("", "")
    parts = [f"epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.3f}",
             f"clean acc {record['train_clean_acc']:.3f}{tags[0]}"
             if record.get("train_clean_acc") is not None else None,
             f"robust acc {record['train_robust_acc']:.3f}{tags[1]}" if robust else None]
    line = " ".join(p for p in parts if p)
    if record.get("eval_clean_acc") is not None:
        line += f" | held-out clean {record['eval_clean_acc']:.3f}"
        if record.get("eval_robust_acc") is not None:
            line += f" pgd {record['eval_robust_acc']:.3f}"
    line += (f" | lr {record['lr']:.4g} | {format_rate(record['images_per_second'])}"
             f" | {record['epoch_seconds']:.1f}s")
    return line
