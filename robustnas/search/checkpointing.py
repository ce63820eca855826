"""The search's checkpoint: what ``checkpoint.pt`` holds, writing it and restoring from it.

The functions take the running :class:`~robustnas.search.searcher.Searcher` (``self``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustnas import distributed as D
from robustnas.config import config_to_dict
from robustnas.errors import UsageError
from robustnas.runtime import rng_state, set_rng_state
from robustnas.search.parallel import average_running_statistics, reduce_saved_meters
from robustnas.search.state import save_search_state
from robustnas.space.models import model_payload


def search_state(self: Any, per_rank: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything a resumed search needs (``checkpoint.pt``)."""
    return {
        "model": model_payload(self.model),
        "config": config_to_dict(self.config),
        "dataset": {"name": self.config.dataset, "root": self.config.data_root},
        "epoch": self.epoch, "step": self.step, "meters": dict(self.meters),
        "w_optimizer": self.w_optimizer.state_dict(),
        "arch_optimizer": self.arch_optimizer.state_dict(),
        "scheduler": self.scheduler.state_dict(),
        "regularizers": self.regularizers.state_dict(),
        "monitor": self.log.state_dict(),
        "rng": rng_state(),  # the same on every process (see search.parallel)
        # Each process's own running sums of the epoch so far (its shard's loss and
        # accuracy) and RNG: restored per rank, so that a resumed torchrun run logs the
        # epoch an uninterrupted one logs (rank 0's sums alone counted them twice).
        "per_rank": per_rank,
        "history": self.history,
        "world_size": self.dist.world_size,
    }

def save_search_checkpoint(self: Any) -> Path:
    """Atomically write the current state to ``<run_dir>/checkpoint.pt`` (rank 0)."""
    if not self.config.sync_bn:  # per-shard running statistics: checkpoint their mean
        average_running_statistics(self.model, self.dist)
    per_rank = D.gather_objects({"meters": dict(self.meters), "rng": rng_state()},
                                self.dist)
    if self.dist.is_main:
        save_search_state(self.checkpoint_path, search_state(self, per_rank))
    return self.checkpoint_path

def restore_search_checkpoint(self: Any, state: dict[str, Any]) -> None:
    """Load a checkpoint's weights, optimisers, regularisers, counters, sums and RNG."""
    try:
        self.model.load_state_dict(state["model"]["state_dict"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise UsageError(f"checkpoint {self.checkpoint_path} does not match this "
                         f"configuration ({str(exc).splitlines()[0][:160]})") from None
    self.regularizers.load_state_dict(state.get("regularizers", {}))
    self.log.load_state_dict(state.get("monitor", {}))
    self.epoch, self.step = int(state["epoch"]), int(state["step"])
    self.history = list(state.get("history", []))
    per_rank = state.get("per_rank")
    if isinstance(per_rank, list) and len(per_rank) == self.dist.world_size:
        own = per_rank[self.dist.rank]
        self.meters = dict(own["meters"])
        set_rng_state(own["rng"])
        return
    # Another number of processes (or a checkpoint without per-rank data): rank 0
    # carries the epoch's sums of all saved processes, the others start at zero, so the
    # reduced sums stay those of the whole global batch; the RNG is rank 0's everywhere.
    saved = ([r["meters"] for r in per_rank] if isinstance(per_rank, list)
             else [dict(state.get("meters", {}))])
    self.meters = reduce_saved_meters(saved) if self.dist.is_main else {}
    set_rng_state(state["rng"])
