"""Your own images from one NumPy ``.npz`` file.

``root`` (``--data-root``) is the path of the ``.npz`` file. Arrays:

- ``x``: the images, ``uint8`` of shape (N, H, W, C) (channels last, as images are usually
  stored; C = 1 for grey, 3 for colour, any C works) or (N, H, W) for grey;
- ``y``: integer labels 0..K-1, shape (N,);
- optional ``x_test``/``y_test`` in the same formats: the test split. Without them,
  ``test_fraction`` (0.2) of each class is held out (:mod:`robustnas.data.custom`),
  seeded by ``split_seed`` (0).

Options: ``num_classes`` (default: the largest label + 1), ``test_fraction``,
``split_seed``, ``hflip`` (false: whether a horizontal flip keeps the label). The file is
read with ``allow_pickle=False``, so it cannot run code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from robustnas.data.base import DATASETS, ImageDataset, as_int_option
from robustnas.data.custom import assemble, bool_option, fraction_option
from robustnas.errors import DataError


def _images(path: Path, key: str, arr: np.ndarray) -> torch.Tensor:
    if arr.dtype != np.uint8:
        raise DataError(f"{path}: array {key!r} must be uint8 images (N, H, W, C), "
                        f"got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or min(arr.shape) < 1:
        raise DataError(f"{path}: array {key!r} must have shape (N, H, W, C) or (N, H, W), "
                        f"got {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).contiguous()


def _labels(path: Path, key: str, arr: np.ndarray, n: int) -> torch.Tensor:
    if arr.dtype.kind not in "iu" or arr.ndim != 1 or len(arr) != n:
        raise DataError(f"{path}: array {key!r} must be integer labels of shape ({n},), "
                        f"got {arr.dtype} {arr.shape}")
    if len(arr) and int(arr.min()) < 0:
        raise DataError(f"{path}: array {key!r} has negative labels")
    return torch.from_numpy(arr.astype(np.int64))


@DATASETS.register("npz")
def load_npz(root: Path, download: bool, *, num_classes: int | None = None,
             test_fraction: float = 0.2, split_seed: int = 0,
             hflip: bool = False) -> ImageDataset:
    """Images and labels from the ``.npz`` file ``root`` (see the module docstring)."""
    del download  # local files only
    test_fraction = fraction_option("npz", "test_fraction", test_fraction)
    split_seed = as_int_option("npz", "split_seed", split_seed, 0)
    hflip = bool_option("npz", "hflip", hflip)
    path = Path(root)
    if not path.is_file():
        raise DataError(f"{path}: no such file (set --data-root to the .npz file)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)} (found: "
                        f"{', '.join(sorted(arrays)) or 'none'})")
    x = _images(path, "x", arrays["x"])
    y = _labels(path, "y", arrays["y"], len(x))
    test = None
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: x_test and y_test must be given together")
    if "x_test" in arrays:
        tx = _images(path, "x_test", arrays["x_test"])
        test = (tx, _labels(path, "y_test", arrays["y_test"], len(tx)))
        if tx.shape[1:] != x.shape[1:]:
            raise DataError(f"{path}: x_test images {tuple(arrays['x_test'].shape[1:])} "
                            f"differ from x images {tuple(arrays['x'].shape[1:])}")
    top = max(int(y.max()) if len(y) else 0,
              int(test[1].max()) if test is not None and len(test[1]) else 0)
    if num_classes is None:
        classes = top + 1
    else:
        classes = as_int_option("npz", "num_classes", num_classes, 2)
        if top >= classes:
            raise DataError(f"{path}: label {top} found but num_classes is {classes}")
    if classes < 2:
        raise DataError(f"{path}: need at least 2 classes, the labels have {classes}")
    return assemble("npz", path, x, y, classes, test, test_fraction, split_seed, hflip)
