"""Shared pieces of the user-data datasets (``imagefolder`` and ``npz``): option checks,
the stratified held-out test split and assembling the :class:`ImageDataset`.

Held-out split: when a dataset brings no test images of its own, ``test_fraction`` of the
images of every class (rounded, at least one per class that has two or more images and at
least one image left for training) is held out as the test split, drawn with a CPU
generator seeded with ``split_seed``; both parts keep the original order. The same options
give the same split on every machine.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robustnas.data.base import ImageDataset, channel_stats
from robustnas.errors import DataError, UsageError


def fraction_option(dataset: str, key: str, value: object) -> float:
    """A float option in [0, 1)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"dataset {dataset!r}: option {key} must be a number, "
                         f"got {value!r}") from None
    if not 0.0 <= number < 1.0:
        raise UsageError(f"dataset {dataset!r}: option {key} must be in [0, 1), got {value!r}")
    return number


def bool_option(dataset: str, key: str, value: object) -> bool:
    """A boolean option (``true``/``false``/``1``/``0`` as text are accepted)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"dataset {dataset!r}: option {key} must be true or false, got {value!r}")


def stratified_holdout(y: torch.Tensor, fraction: float, seed: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, test indices): ``fraction`` of every class held out (see module doc)."""
    gen = torch.Generator().manual_seed(int(seed))
    train_parts, test_parts = [], []
    for label in torch.unique(y).tolist():
        members = torch.nonzero(y == label).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        n = len(members)
        n_test = 0 if n < 2 or fraction <= 0 else min(max(1, round(fraction * n)), n - 1)
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    return torch.cat(train_parts).sort().values, torch.cat(test_parts).sort().values


def assemble(name: str, source: Path, x: torch.Tensor, y: torch.Tensor, num_classes: int,
             test: tuple[torch.Tensor, torch.Tensor] | None, test_fraction: float,
             split_seed: int, hflip: bool) -> ImageDataset:
    """Build the dataset from uint8 (N, C, H, W) images; hold out a test split when
    ``test`` is None. Mean/std come from the training images."""
    if test is None:
        if test_fraction <= 0:
            raise UsageError(f"{source}: no test images; set the option test_fraction "
                             "(e.g. 0.2) to hold out part of the images")
        train_idx, test_idx = stratified_holdout(y, test_fraction, split_seed)
        if len(test_idx) == 0:
            raise DataError(f"{source}: too few images to hold out a test split "
                            f"({len(y)} images)")
        test = (x[test_idx], y[test_idx])
        x, y = x[train_idx], y[train_idx]
    if len(y) == 0:
        raise DataError(f"{source}: no training images")
    mean, std = channel_stats(x)
    return ImageDataset(name, x.contiguous(), y.long(), test[0].contiguous(), test[1].long(),
                        num_classes, mean, std, hflip=hflip)
