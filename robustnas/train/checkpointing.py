"""The retraining checkpoint: what ``last.pt``/``best.pt`` hold and restoring from them.

The functions take the running :class:`~robustnas.train.trainer.Trainer` (``self``).
"""

from __future__ import annotations

from typing import Any

import torch

from robustnas.config import config_to_dict
from robustnas.divergence import change_learning_rate
from robustnas.errors import UsageError
from robustnas.resume import checkpoint_counters
from robustnas.runtime import seed_everything, set_rng_state
from robustnas.space.models import model_payload
from robustnas.train.state import LAST_NAME


def train_state(self: Any, rng_all: list[Any]) -> dict[str, Any]:
    """Everything a resumed retraining needs (``last.pt``); ``rng_all``: every process's RNG."""
    config = self.config
    state = {
        "model": model_payload(self.net),
        "dataset": {"name": config.dataset, "root": config.data_root,
                    "options": dict(config.dataset_options)},
        "objective": config.adversarial,
        "epoch": self.epoch, "step": self.step,
        "optimizer": self.optimizer.state_dict(),
        "scheduler": self.scheduler.state_dict(),
        "rng": rng_all[0], "world_size": self.dist.world_size,
        "config": config_to_dict(config),
        "best": dict(self.best), "metrics": dict(self.metrics),
        "history": list(self.history),
        "meters": {k: float(v) for k, v in self.meters.items()},
        "seconds": self.seconds,
    }
    if self.dist.enabled:
        state["rng_per_rank"] = rng_all
    return state


def restore_train_checkpoint(self: Any, state: dict[str, Any]) -> None:
    """Load a checkpoint's optimiser, schedule, counters, history, sums and RNG."""
    try:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise UsageError(f"the checkpoint does not match this configuration "
                         f"({str(exc).splitlines()[0][:160]})") from None
    change_learning_rate(self.optimizer, self.scheduler, self.config.lr)  # e.g. lowered
    self.epoch, self.step = checkpoint_counters(
        state, epochs=self.config.epochs, steps_per_epoch=self.steps_per_epoch_count,
        source=f"checkpoint {self.run_dir / LAST_NAME}")
    self.seconds = float(state.get("seconds", 0.0))
    self.history = list(state.get("history", []))
    self.best = dict(state.get("best", self.best))
    self.metrics = dict(state.get("metrics", {}))
    self.meters = {k: torch.tensor(v, dtype=torch.float64, device=self.device)
                   for k, v in state.get("meters", {}).items()}
    per_rank = state.get("rng_per_rank")
    if per_rank is not None and len(per_rank) == self.dist.world_size:
        set_rng_state(per_rank[self.dist.rank])
    elif self.dist.rank == 0:
        set_rng_state(state["rng"])
    else:  # a different number of processes: fresh, distinct streams
        seed_everything(self.config.seed + 7919 * self.dist.rank + 104729 * self.epoch)
