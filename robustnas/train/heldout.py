"""Periodic held-out evaluation during retraining: clean and PGD accuracy on a test subset.

The subset is a fixed random selection of ``n`` test images (permutation seeded with 0, so
runs with different seeds are compared on the same images). The model is evaluated in eval
mode; PGD uses a uniform random start drawn from a generator seeded per (seed, epoch,
batch), so the numbers are reproducible and identical for any number of processes: batches
are dealt round-robin to the processes and the sums are all-reduced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.attacks import pgd_attack
from robustnas.train.distributed import DistInfo, all_reduce_sum
from robustnas.train.objectives.base import MainLogits, mode, unwrap

SUBSET_SEED = 0


def heldout_subset(x: torch.Tensor, y: torch.Tensor, n: int) -> tuple[torch.Tensor,
                                                                      torch.Tensor]:
    """A fixed random subset of ``n`` examples (all of them when ``n`` <= 0 or too large)."""
    total = len(y)
    if n <= 0 or n >= total:
        return x, y
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(SUBSET_SEED))
    idx = perm[:n].sort().values
    return x[idx], y[idx]


def evaluate_heldout(model: nn.Module, x_u8: torch.Tensor, y: torch.Tensor, *,
                     eps: float, step_size: float, steps: int, batch_size: int,
                     device: torch.device, seed: int = 0, epoch: int = 0,
                     autocast: Callable[[], Any] = contextlib.nullcontext,
                     channels_last: bool = False,
                     dist_info: DistInfo | None = None) -> dict[str, float]:
    """Clean and PGD loss/accuracy of ``model`` on ``(x_u8, y)`` (uint8 images).

    Returns ``clean_acc``, ``clean_loss`` and, when ``steps`` > 0 and ``eps`` > 0,
    ``robust_acc``, ``robust_loss``; plus ``n``. The model's mode is restored afterwards.
    """
    info = dist_info or DistInfo()
    module = unwrap(model)
    view = MainLogits(module, autocast)
    attack = steps > 0 and eps > 0
    # sums: n, clean loss, clean correct, robust loss, robust correct
    sums = torch.zeros(5, dtype=torch.float64, device=device)
    with mode(module, training=False):
        for b, start in enumerate(range(0, len(y), batch_size)):
            if b % info.world_size != info.rank:
                continue
            xb = x_u8[start:start + batch_size].to(device).float().div_(255.0)
            if channels_last and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = y[start:start + batch_size].to(device)
            with torch.no_grad():
                logits = view(xb)
            sums[0] += yb.shape[0]
            sums[1] += F.cross_entropy(logits, yb, reduction="sum").double()
            sums[2] += (logits.argmax(1) == yb).sum()
            if attack:
                gen = torch.Generator(device=device)
                gen.manual_seed(_batch_seed(seed, epoch, b))
                x_adv = pgd_attack(view, xb, yb, eps, step_size, steps, random_start=True,
                                   generator=gen)
                with torch.no_grad():
                    adv = view(x_adv)
                sums[3] += F.cross_entropy(adv, yb, reduction="sum").double()
                sums[4] += (adv.argmax(1) == yb).sum()
    sums = all_reduce_sum(sums, info).tolist()
    n = max(sums[0], 1.0)
    result = {"n": int(sums[0]), "clean_loss": sums[1] / n, "clean_acc": sums[2] / n}
    if attack:
        result.update(robust_loss=sums[3] / n, robust_acc=sums[4] / n)
    return result


def _batch_seed(seed: int, epoch: int, batch: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + batch) % (2**63 - 1)
