"""A deterministic, learnable toy dataset for tests and smoke runs (no files needed).

Each class has a smooth random prototype image (a coarse 3x3 random grid per channel,
bilinearly upsampled); a sample is its class prototype plus a random brightness shift and
per-pixel Gaussian noise, clipped to [0, 1] and quantised to ``uint8``. Classes are balanced
(label ``i % num_classes`` before shuffling). Everything is drawn from one CPU generator
seeded with ``seed``, so equal options give bit-identical data on every machine.
Mean/std are computed from the training split. Flips are disabled (``hflip=False``): the
prototypes are not mirror-symmetric.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from robustnas.data.base import DATASETS, ImageDataset, as_int_option, channel_stats
from robustnas.errors import UsageError


def _samples(prototypes: torch.Tensor, n: int, noise: float,
             generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    num_classes = prototypes.shape[0]
    labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=generator)]
    shift = (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.2
    jitter = torch.randn((n, *prototypes.shape[1:]), generator=generator) * noise
    images = (prototypes[labels] + shift + jitter).clamp(0.0, 1.0)
    return torch.round(images * 255.0).to(torch.uint8), labels.long()


@DATASETS.register("synthetic")
def load_synthetic(root: Path, download: bool, *, num_classes: int = 10, image_size: int = 8,
                   channels: int = 3, n_train: int = 512, n_test: int = 128, seed: int = 0,
                   noise: float = 0.1) -> ImageDataset:
    """Seeded class-prototype images; ``root`` and ``download`` are ignored."""
    del root, download
    num_classes = as_int_option("synthetic", "num_classes", num_classes, 2)
    image_size = as_int_option("synthetic", "image_size", image_size, 2)
    channels = as_int_option("synthetic", "channels", channels, 1)
    n_train = as_int_option("synthetic", "n_train", n_train, 1)
    n_test = as_int_option("synthetic", "n_test", n_test, 1)
    seed = as_int_option("synthetic", "seed", seed, 0)
    try:
        noise = float(noise)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"dataset 'synthetic': option noise must be a number, "
                         f"got {noise!r}") from None
    if not noise >= 0.0:
        raise UsageError(f"dataset 'synthetic': option noise must be >= 0, got {noise}")

    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, channels, 3, 3, generator=generator)
    # Keep prototypes away from the clipping range so noise stays symmetric.
    prototypes = 0.15 + 0.7 * F.interpolate(coarse, size=(image_size, image_size),
                                            mode="bilinear", align_corners=True)
    train_x, train_y = _samples(prototypes, n_train, noise, generator)
    test_x, test_y = _samples(prototypes, n_test, noise, generator)
    mean, std = channel_stats(train_x)
    return ImageDataset("synthetic", train_x, train_y, test_x, test_y, num_classes, mean, std,
                        hflip=False)
