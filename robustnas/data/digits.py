"""Handwritten digits that work offline: scikit-learn's copy of the UCI 8x8 digits.

The data are the test part of the UCI "Optical Recognition of Handwritten Digits" data set
(E. Alpaydin, C. Kaynak, 1998; UCI Machine Learning Repository, licensed CC BY 4.0), as
distributed by scikit-learn (``sklearn.datasets.load_digits``): 1,797 grey 8x8 images with
values 0..16 and labels 0..9. See ``DIGITS_LICENSE.txt`` next to this file.

The package ships them as ``digits.npz`` so that scikit-learn is not needed at run time.
Pixels are stored as ``uint8`` scaled to 0..255 (``round(v * 255 / 16)``). The train/test split
is fixed and stored in the archive: a permutation drawn with ``numpy.random.default_rng(0)``,
first 1,437 images (80 %) for training and the remaining 360 for testing; it was built by
:func:`build_digits_archive`. Mean/std are computed from the training split.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch

from robustnas.data.base import DATASETS, ImageDataset, channel_stats
from robustnas.errors import DataError

ARCHIVE_NAME = "digits.npz"
TRAIN_FRACTION = 0.8
SPLIT_SEED = 0


def build_digits_archive(path: str | Path) -> None:
    """Write ``digits.npz`` from scikit-learn's digits (needs scikit-learn; run once)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.uint8)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    n_train = int(np.floor(TRAIN_FRACTION * len(labels)))
    train, test = order[:n_train], order[n_train:]
    np.savez_compressed(path, train_x=images[train], train_y=labels[train],
                        test_x=images[test], test_y=labels[test])


@DATASETS.register("digits")
def load_digits_dataset(root: Path, download: bool) -> ImageDataset:
    """The 8x8 digits (1x8x8 images, 10 classes); ``root`` and ``download`` are ignored."""
    del root, download  # bundled with the package
    source = resources.files("robustnas.data") / ARCHIVE_NAME
    try:
        with source.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {key: torch.from_numpy(archive[key].copy()) for key in
                      ("train_x", "train_y", "test_x", "test_y")}
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"the bundled {ARCHIVE_NAME} is missing or damaged ({exc}); "
                        "reinstall robustnas") from None
    mean, std = channel_stats(arrays["train_x"])
    return ImageDataset("digits", arrays["train_x"], arrays["train_y"].long(), arrays["test_x"],
                        arrays["test_y"].long(), 10, mean, std, hflip=False)
