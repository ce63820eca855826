"""The end of a retraining: ``summary.json``, the history files and the result returned
(the running :class:`~robustnas.train.trainer.Trainer` is ``self``)."""

from __future__ import annotations

from typing import Any

from robustnas.io import atomic_write_text
from robustnas.monitor.history import write_history
from robustnas.space.models import describe_architecture
from robustnas.train.result import RetrainResult
from robustnas.train.state import BEST_NAME, LAST_NAME


def run_summary(self: Any, finished: bool) -> dict[str, Any]:
    """The run's final/best metrics as plain data (what ``summary.json`` holds)."""
    best_path = self.run_dir / BEST_NAME
    return {
        "objective": self.config.adversarial, "genotype": describe_architecture(self.net),
        "dataset": self.config.dataset, "parameters": self.num_parameters,
        "epochs": self.config.epochs, "epochs_completed": self.epoch,
        "finished": finished, "world_size": self.dist.world_size,
        "final": self.history[-1] if self.history else {},
        "heldout": dict(self.metrics), "selection": dict(self.data.selection),
        "best": dict(self.best),
        "checkpoints": {"last": str(self.run_dir / LAST_NAME),
                        "best": str(best_path) if self.best["value"] is not None
                        else None},
    }

def write_summary(self: Any, finished: bool) -> None:
    """Write ``summary.json`` and the history files (rank 0)."""
    import json

    atomic_write_text(self.run_dir / "summary.json",
                      json.dumps(run_summary(self, finished), indent=2) + "\n")
    write_history(self.run_dir, self.history)  # history.json / history.csv


def finish_run(self: Any) -> RetrainResult:
    """The final summary and what :func:`robustnas.train.retrain` returns."""
    if self.dist.is_main:
        write_summary(self, finished=True)
    best = self.run_dir / BEST_NAME if self.best["value"] is not None else None
    return RetrainResult(run_dir=self.run_dir, last_checkpoint=self.run_dir / LAST_NAME,
                         best_checkpoint=best, summary_path=self.run_dir / "summary.json",
                         epochs_run=self.epoch, history=list(self.history),
                         final=self.history[-1] if self.history else {},
                         heldout=dict(self.metrics), best=dict(self.best), model=self.net,
                         rank=self.dist.rank, selection=dict(self.data.selection))
