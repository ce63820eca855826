"""Seeded train/validation splits of a training set (the search uses one half for weights
and the other for architecture parameters, as in DARTS).

DARTS takes the first ``floor(portion * n)`` indices of the unshuffled training set; here the
split is a seeded random permutation instead (both parts keep the dataset's order), so that
the halves are class-balanced in expectation even for files sorted by class. ``portion`` is
the fraction that goes to the first part, ``floor(portion * n)`` images.
"""

from __future__ import annotations

import torch

from robustnas.data.base import ImageDataset
from robustnas.errors import UsageError


def split_indices(n: int, portion: float = 0.5, seed: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` into two disjoint sorted index tensors of sizes
    ``floor(portion * n)`` and the rest, drawn from a CPU generator seeded with ``seed``."""
    if not 0.0 < float(portion) < 1.0:
        raise UsageError(f"split portion must be strictly between 0 and 1, got {portion}")
    n_first = int(float(portion) * n)
    if n_first < 1 or n_first >= n:
        raise UsageError(f"cannot split {n} images with portion {portion}: "
                         "one part would be empty")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return order[:n_first].sort().values, order[n_first:].sort().values


def search_split(dataset: ImageDataset, portion: float = 0.5, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_x, train_y, val_x, val_y)``: the dataset's training set split by
    :func:`split_indices` (the test set is not touched)."""
    first, second = split_indices(len(dataset.train_y), portion, seed)
    return (dataset.train_x[first], dataset.train_y[first],
            dataset.train_x[second], dataset.train_y[second])
