"""The search's divergence guard: what it watches and what it tells the user to change."""

from __future__ import annotations

from typing import Any

from robustnas.divergence import DivergenceGuard, split_parameters


def search_divergence_guard(searcher: Any) -> DivergenceGuard:
    """Stops the search at the first non-finite loss, gradient norm, α or weight."""
    guard = DivergenceGuard(
        "search", skip_nonfinite=searcher.config.skip_nonfinite,
        checkpoint=searcher.checkpoint_path, steps_per_epoch=searcher._steps_per_epoch(),
        hint="(lower w_lr or arch_lr with --set, clip with --set grad_clip=5, or skip such "
             "steps with --set skip_nonfinite=true)")
    guard.watch_loss_module(searcher.criterion)
    guard.watch_optimizer(searcher.arch_optimizer, "architecture parameters (α)",
                          "validation loss")
    guard.watch_optimizer(searcher.w_optimizer, "weights", "training loss")
    searcher._guarded = split_parameters(searcher.model, searcher.model.arch_parameters())
    return guard
