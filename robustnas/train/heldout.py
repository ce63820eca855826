"""Model selection during retraining: the held-out split and its periodic evaluation.

``best.pt`` is chosen on a **validation split carved from the training set** (``select_on:
val``, the default): ``val_n`` training images (default ``min(1000, train / 10)``; 1000 is
what robust-overfitting work holds out of CIFAR-10) are drawn by a permutation seeded with
``val_seed`` (default 0, so runs with different seeds share the split) and removed from
training. The test split is then left to ``robustnas evaluate``. ``select_on: test``
trains on the whole training set and selects on ``eval_n`` test images (a fixed subset
seeded with 0), as the original DARTS/AdvRush scripts do; the selected accuracy is then
measured on the data it was selected on and is optimistic, which the run says loudly.

The evaluation is clean and PGD accuracy in eval mode on ``eval_n`` images of the split
(all of them when ``eval_n`` is 0); PGD uses a uniform random start drawn from a generator
seeded per (seed, epoch, batch), so the numbers are reproducible and identical for any
number of processes: batches are dealt round-robin to the processes and the sums are
all-reduced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.attacks import pgd_attack
from robustnas.distributed import DistInfo, all_reduce_sum
from robustnas.errors import UsageError
from robustnas.train.objectives.base import MainLogits, mode, unwrap

SUBSET_SEED = 0
SELECT_ON = ("val", "test")
DEFAULT_VAL_N = 1000
OPTIMISTIC_WARNING = ("best.pt is selected on test images (select_on: test): its accuracy, "
                      "and anything robustnas evaluate then reports on the test split, is "
                      "optimistic (selected on the data it is measured on); use select_on: val "
                      "for results you report")


FEW_SELECTION_IMAGES = 50
"""Below this many validation images a warning says that best.pt follows noise (one image
is 2 accuracy points at 50; tiny custom data sets give 1 by default)."""


def check_selection(config: Any) -> None:
    """Reject unusable ``select_on`` / ``val_n`` values with one clear message."""
    if config.select_on not in SELECT_ON:
        raise UsageError(f"select_on must be val or test, got {config.select_on!r}")
    if config.val_n is not None and config.val_n < 1 and config.select_on == "val":
        raise UsageError(f"val_n must be at least 1 when selecting on a validation split, got "
                         f"{config.val_n} (select_on: test selects on test images instead, "
                         f"which is optimistic)")


def validation_size(config: Any, train_size: int) -> int:
    """The number of training images carved out for validation."""
    if config.val_n is not None:
        return int(config.val_n)
    return min(DEFAULT_VAL_N, train_size // 10)


def selection_split(config: Any, train_x: torch.Tensor, train_y: torch.Tensor,
                    test_x: torch.Tensor, test_y: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                               dict[str, Any]]:
    """``(train_x, train_y, eval_x, eval_y, selection)`` for ``config.select_on``.

    ``selection`` describes the split as plain data (``split``, ``images``, ``seed``,
    ``train_images``, and for ``test`` a ``warning``); it goes into ``summary.json``.
    """
    if config.select_on == "test":
        eval_x, eval_y = heldout_subset(test_x, test_y, config.eval_n)
        return train_x, train_y, eval_x, eval_y, {
            "split": "test", "images": len(eval_y), "seed": SUBSET_SEED,
            "train_images": len(train_y), "warning": OPTIMISTIC_WARNING}
    total = len(train_y)
    n_val = validation_size(config, total)
    if n_val < 1 or n_val > total // 2:
        raise UsageError(f"val_n {n_val} does not fit the {total} training images (use 1.."
                         f"{total // 2}; the rest trains the network)")
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(int(config.val_seed)))
    val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
    val_x, val_y = heldout_subset(train_x[val_idx], train_y[val_idx], config.eval_n)
    selection: dict[str, Any] = {
        "split": "val", "images": len(val_y), "val_n": n_val, "seed": int(config.val_seed),
        "train_images": len(train_idx)}
    # Only a split that the data make small: an eval_n below it is the user's own choice
    # (a quick run), and warning on every such run would bury the warnings that matter.
    if n_val < FEW_SELECTION_IMAGES:
        selection["warning"] = few_images_warning(len(val_y), total // 2)
    return train_x[train_idx], train_y[train_idx], val_x, val_y, selection


def few_images_warning(images: int, most: int) -> str:
    """Why a best.pt chosen on ``images`` validation images is not worth much."""
    return (f"best.pt is chosen on only {images} validation image(s): one image moves the "
            f"accuracy by {100 / images:.3g} points, so the choice follows noise; give more "
            f"data or a larger val_n (--set val_n=N, up to {most}), or use last.pt")


def selection_label(selection: dict[str, Any]) -> str:
    """``"validation (143 of the training images, seed 0)"`` or ``"test (360 images)"``."""
    if selection.get("split") == "test":
        return f"test ({selection['images']} images, optimistic)"
    return (f"validation ({selection['images']} images carved from the training split, "
            f"seed {selection['seed']})")


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
