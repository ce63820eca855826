"""SVHN (cropped digits, "format 2") from the MATLAB files of the Stanford site.

Expected under ``root`` (or ``root/svhn``): ``train_32x32.mat`` and ``test_32x32.mat``
(http://ufldl.stanford.edu/housenumbers/). Each holds ``X`` (32, 32, 3, N) uint8 and ``y``
(N, 1) with labels 1..10, where 10 stands for the digit 0; labels are mapped 10 -> 0.
The ``extra`` split is not used. Normalisation statistics are the commonly published
per-channel values of the SVHN training set: mean (0.4377, 0.4438, 0.4728),
std (0.1980, 0.2010, 0.1970). Horizontal flips are disabled (``hflip=False``): mirrored digits
are not digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robustnas.data.base import DATASETS, ImageDataset, check_labels
from robustnas.data.download import fetch_with_torchvision, one_line
from robustnas.errors import DataError

SVHN_MEAN = (0.4376821, 0.4437697, 0.47280442)
SVHN_STD = (0.19803012, 0.20101562, 0.19703614)
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_svhn_mat(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one SVHN ``.mat`` file into ``uint8`` images (N, 3, 32, 32) and labels 0..9."""
    import scipy.io

    hint = f"replace it with a fresh copy of {path.name} from http://ufldl.stanford.edu/housenumbers/"
    try:
        content = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises many types for truncated or foreign files
        raise DataError(f"{path}: cannot read SVHN .mat file ({one_line(exc)}); {hint}") from None
    images, labels = content.get("X"), content.get("y")
    if not isinstance(images, np.ndarray) or not isinstance(labels, np.ndarray):
        raise DataError(f"{path}: not an SVHN file (needs variables 'X' and 'y'); {hint}")
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.dtype != np.uint8:
        raise DataError(f"{path}: 'X' must be uint8 of shape (32, 32, 3, N), got "
                        f"{images.dtype} {images.shape}; {hint}")
    flat = labels.reshape(-1)
    if len(flat) != images.shape[3]:
        raise DataError(f"{path}: {images.shape[3]} images but {len(flat)} labels; {hint}")
    if not np.issubdtype(flat.dtype, np.number) or np.any(flat != np.round(flat)):
        raise DataError(f"{path}: 'y' must hold integer labels; {hint}")
    digits = flat.astype(np.int64)
    check_labels(path, digits, 11)
    digits[digits == 10] = 0
    # (H, W, C, N) -> (N, C, H, W)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(3, 2, 0, 1)))
    return x, torch.from_numpy(digits)


def _locate(root: Path) -> Path | None:
    for folder in (root, root / "svhn"):
        if all((folder / name).is_file() for name in SVHN_FILES.values()):
            return folder
    return None


@DATASETS.register("svhn")
def load_svhn(root: Path, download: bool) -> ImageDataset:
    """SVHN: 73,257 train / 26,032 test 3x32x32 images of house-number digits, 10 classes."""
    placement = (f"place {SVHN_FILES['train']} and {SVHN_FILES['test']} "
                 f"(from http://ufldl.stanford.edu/housenumbers/) in {root}")
    folder = _locate(root)
    if folder is None and download:
        fetch_with_torchvision("SVHN", "SVHN", root, [{"split": "train"}, {"split": "test"}],
                               placement)
        folder = _locate(root)
    if folder is None:
        missing = next(name for name in SVHN_FILES.values() if not (root / name).is_file())
        raise DataError(f"SVHN not found under {root}: {root / missing} is missing; "
                        f"{placement}, or pass --download")
    train_x, train_y = read_svhn_mat(folder / SVHN_FILES["train"])
    test_x, test_y = read_svhn_mat(folder / SVHN_FILES["test"])
    return ImageDataset("svhn", train_x, train_y, test_x, test_y, 10, SVHN_MEAN, SVHN_STD,
                        hflip=False)
