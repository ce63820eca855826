"""The supernet's validation at each epoch's end (the running search is ``self``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch

from robustnas import distributed as D
from robustnas.search.parallel import average_running_statistics


@torch.no_grad()
def evaluate_supernet(self: Any) -> tuple[float, float]:
    """Loss and accuracy of the supernet on the validation split (eval mode; under
    torchrun each process evaluates its shard of every batch and the sums are reduced).

    The whole split, unless ``max_steps_per_epoch`` caps the epoch: then its first
    ``max_steps_per_epoch`` batches, so that a capped smoke run is not held up by a
    full validation at every epoch's end (``val_images`` in the history says how many).
    """
    if not self.config.sync_bn:  # per-shard running statistics: evaluate with their mean
        average_running_statistics(self.model, self.dist)
    self.model.eval()
    total, loss_sum, correct = 0, 0.0, 0
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = self.data.val_eval.epoch(0)
    if self.config.max_steps_per_epoch > 0:  # every process takes the same batches
        batches = itertools.islice(batches, self.config.max_steps_per_epoch)
    for x, y in batches:
        with self.autocast():
            logits = self.model(x)
        loss_sum += float(self.criterion(logits.float(), y)) * y.shape[0]
        correct += int((logits.argmax(1) == y).sum())
        total += y.shape[0]
    self.model.train()
    if self.dist.enabled:
        sums = D.all_reduce_sum(torch.tensor([loss_sum, correct, total], dtype=torch.float64,
                                             device=self.device), self.dist)
        loss_sum, correct, total = float(sums[0]), int(sums[1]), int(sums[2])
    self.val_images = total
    return loss_sum / max(total, 1), correct / max(total, 1)
