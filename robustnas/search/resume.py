"""Resuming a search: which settings may change, and applying changed optimiser settings.

``robustnas search --resume --out DIR`` keeps the settings the run was started with except
those given on the command line (see :mod:`robustnas.resume`). Settings that define the
supernet, the data order or the schedule (:data:`FIXED_KEYS`) cannot change; optimiser
settings can (for example a lower ``w_lr`` after a divergence) and take effect from the
next step. Without a checkpoint (a run killed before its first one), the run starts from
scratch with the settings of its ``config.yaml``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from robustnas.resume import merge_resumed, saved_run_settings, say_changes
from robustnas.search.config import SearchConfig
from robustnas.search.state import CHECKPOINT_NAME, load_search_state

FIXED_KEYS = frozenset({
    "dataset", "dataset_options", "train_portion", "augment", "batch_size", "seed", "C",
    "layers", "steps", "order", "regularizer", "regularizer_options", "epochs",
    "warmup_epochs",
})


def resumed_search_config(out: str | Path, explicit: Mapping[str, Any]
                          ) -> tuple[SearchConfig, dict[str, Any] | None]:
    """The configuration to continue ``out`` with, and its checkpoint (``None``: there is
    none, start from scratch). Prints what changes and when it starts from scratch."""
    out = Path(out)
    path = out / CHECKPOINT_NAME
    state = load_search_state(path) if path.exists() else None
    saved = dict(state["config"]) if state is not None else saved_run_settings(out)
    explicit = {**explicit, "out": str(out)}
    if state is None:
        where = "its config.yaml" if saved is not None else "the given settings"
        print(f"resume: no checkpoint in {out}: starting from scratch with {where}",
              file=sys.stderr, flush=True)
    if saved is None:
        return merge_resumed(SearchConfig, {}, explicit)[0], None
    config, changes = merge_resumed(SearchConfig, saved, explicit,
                                    fixed=FIXED_KEYS if state is not None else (),
                                    source=str(path))
    say_changes(changes)
    return config, state


def apply_optimizer_settings(config: SearchConfig, w_optimizer: torch.optim.Optimizer,
                             scheduler: Any, arch_optimizer: torch.optim.Optimizer) -> None:
    """After loading the optimisers' state: apply settings changed on resume.

    Unchanged settings are left exactly as loaded (bit-identical resume). A new ``w_lr`` or
    ``w_lr_min`` restarts the cosine schedule's value from its closed form at the current
    epoch.
    """
    for group in w_optimizer.param_groups:
        group["momentum"] = config.w_momentum
        group["weight_decay"] = config.w_weight_decay
    if list(scheduler.base_lrs) != [config.w_lr] * len(scheduler.base_lrs) or \
            scheduler.eta_min != config.w_lr_min:
        scheduler.base_lrs = [config.w_lr] * len(scheduler.base_lrs)
        scheduler.eta_min = config.w_lr_min
        t, period = scheduler.last_epoch, scheduler.T_max
        lr = config.w_lr_min + (config.w_lr - config.w_lr_min) * (
            1 + math.cos(math.pi * t / period)) / 2
        for group in w_optimizer.param_groups:
            group["initial_lr"] = config.w_lr
            group["lr"] = lr
        scheduler._last_lr = [lr] * len(w_optimizer.param_groups)
    for group in arch_optimizer.param_groups:
        group["lr"] = config.arch_lr
        group["betas"] = (config.arch_beta1, config.arch_beta2)
        group["weight_decay"] = config.arch_weight_decay
