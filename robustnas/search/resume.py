"""Resuming a search: the run to continue, its settings, and re-applying optimiser settings.

``robustnas search --resume [PATH]`` keeps the settings the run was started with except
those given on the command line, by the one policy of :mod:`robustnas.resume`: settings
declared ``resume=FIXED`` on :class:`SearchConfig` (data, supernet, schedule, regulariser:
:data:`FIXED_KEYS`) cannot change; optimiser settings can (for example a lower ``w_lr``
after a divergence) and take effect from the next step. Without a checkpoint (a run killed
before its first one), the run starts from scratch with the settings of its
``config.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from robustnas.errors import UsageError
from robustnas.options import default_of
from robustnas.resume import (
    apply_learning_rate,
    fixed_settings,
    merge_resumed,
    resume_target,
    saved_run_settings,
    say_changes,
    say_from_scratch,
)
from robustnas.search.config import SearchConfig
from robustnas.search.state import CHECKPOINT_NAME, load_search_state

#: The settings a resumed search cannot change (declared on the SearchConfig fields).
FIXED_KEYS = fixed_settings(SearchConfig)


def resume_search_dir(resume: bool | str | Path, explicit: Mapping[str, Any]) -> Path:
    """The run directory ``resume`` names: ``True``, the given (or default) ``out``; a path,
    that run directory or the directory of its ``checkpoint.pt``.

    A search continues in its own directory (the loop reads ``<out>/checkpoint.pt``), so a
    path together with another ``out`` is refused, as is a named checkpoint file that does
    not exist or is not a run's ``checkpoint.pt``.
    """
    given_out = explicit.get("out")
    target = resume_target(resume, out=given_out, default_out=default_of(SearchConfig, "out"),
                           checkpoint_name=CHECKPOINT_NAME)
    if resume is True:
        return target.out
    path = Path(resume)
    if not target.from_directory:
        if not path.exists():
            raise UsageError(f"checkpoint {path} does not exist (give a run directory or its "
                             f"{CHECKPOINT_NAME})")
        if path.name != CHECKPOINT_NAME:
            raise UsageError(f"{path}: a search continues the {CHECKPOINT_NAME} of its run "
                             f"directory; give that directory")
    if target.elsewhere:
        raise UsageError(f"--resume {path} continues the search in "
                         f"{target.checkpoint.parent} and --out {given_out} names another "
                         f"directory: give one of them")
    return target.checkpoint.parent


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
        say_from_scratch(out, saved)
    if saved is None:
        return merge_resumed(SearchConfig, {}, explicit, checkpoint=False)[0], None
    config, changes = merge_resumed(SearchConfig, saved, explicit,
                                    checkpoint=state is not None, source=str(path))
    say_changes(changes)
    return config, state


def apply_optimizer_settings(config: SearchConfig, w_optimizer: torch.optim.Optimizer,
                             scheduler: Any, arch_optimizer: torch.optim.Optimizer) -> None:
    """After loading the optimisers' state: apply settings changed on resume.

    Unchanged settings are left exactly as loaded (bit-identical resume). A new ``w_lr`` or
    ``w_lr_min`` takes effect by the one rule of :func:`robustnas.resume.apply_learning_rate`
    (the cosine schedule keeps its position, its ends move).
    """
    for group in w_optimizer.param_groups:
        group["momentum"] = config.w_momentum
        group["weight_decay"] = config.w_weight_decay
    apply_learning_rate(w_optimizer, scheduler, config.w_lr, config.w_lr_min)
    for group in arch_optimizer.param_groups:
        group["lr"] = config.arch_lr
        group["betas"] = (config.arch_beta1, config.arch_beta2)
        group["weight_decay"] = config.arch_weight_decay
