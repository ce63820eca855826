"""CIFAR-10 and CIFAR-100 from the "python version" archives of Krizhevsky's site.

Expected layout under ``root`` (``root`` may also be the batch folder itself)::

    cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch   (cifar-10-python.tar.gz)
    cifar-100-python/train, test                                     (cifar-100-python.tar.gz)

Each file is a pickled dict with ``data`` (N x 3072 uint8, channel-major 32x32 planes) and
``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100, the 100-class labels used here).
Files are unpickled with an allow-list of numpy globals only, so a tampered file cannot run
code. Normalisation statistics are the standard published per-channel values of the
training sets (as used by DARTS and its successors):

- CIFAR-10:  mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616)
- CIFAR-100: mean (0.5071, 0.4865, 0.4409), std (0.2673, 0.2564, 0.2762)
"""

from __future__ import annotations

import importlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustnas.data.base import DATASETS, ImageDataset, check_labels
from robustnas.data.download import fetch_with_torchvision, one_line
from robustnas.errors import DataError

CIFAR10_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR10_STD = (0.24703233, 0.24348505, 0.26158768)
CIFAR100_MEAN = (0.50707516, 0.48654887, 0.44091784)
CIFAR100_STD = (0.26733429, 0.25643846, 0.27615047)

_PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarSpec:
    """Where one CIFAR variant lives on disk and how its files are keyed."""

    name: str
    title: str
    folder: str
    archive: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    torchvision_class: str

    @property
    def files(self) -> tuple[str, ...]:
        return self.train_files + self.test_files


CIFAR10 = CifarSpec("cifar10", "CIFAR-10", "cifar-10-batches-py", "cifar-10-python.tar.gz",
                    tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "labels",
                    10, CIFAR10_MEAN, CIFAR10_STD, "CIFAR10")
CIFAR100 = CifarSpec("cifar100", "CIFAR-100", "cifar-100-python", "cifar-100-python.tar.gz",
                     ("train",), ("test",), "fine_labels", 100, CIFAR100_MEAN, CIFAR100_STD,
                     "CIFAR100")


def _numpy_global(module: str, name: str) -> Any:
    # numpy 2 moved numpy.core to numpy._core; files written by either version name theirs.
    for candidate in (module.replace("numpy.core", "numpy._core"), module):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"cannot resolve {module}.{name}")


_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _numpy_global(module, name)
        if (module, name) == ("_codecs", "encode"):  # bytes written with protocol <= 2
            import codecs
            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def read_cifar_batch(path: Path, label_key: str, num_classes: int, archive: str = "the archive"
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one CIFAR batch file into ``uint8`` images (N, 3, 32, 32) and int64 labels."""
    hint = f"replace it with a fresh copy from {archive}"
    try:
        with open(path, "rb") as handle:
            content = _ArrayUnpickler(handle, encoding="bytes").load()
    except Exception as exc:  # truncated files fail in many different ways
        raise DataError(f"{path}: cannot read CIFAR batch file ({one_line(exc)}); "
                        f"{hint}") from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: not a CIFAR batch file (no dict inside); {hint}")
    entries = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in content.items()}
    if "data" not in entries or label_key not in entries:
        raise DataError(f"{path}: not a CIFAR batch file (needs keys 'data' and "
                        f"'{label_key}'); {hint}")
    data = entries["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != _PIXELS:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (N, {_PIXELS}), "
                        f"got {type(data).__name__} {shape}; {hint}")
    try:
        labels = np.asarray(entries[label_key], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{path}: '{label_key}' is not a list of integers; {hint}") from None
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels; {hint}")
    check_labels(path, labels, num_classes)
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels.copy())


def _locate(spec: CifarSpec, root: Path) -> Path | None:
    for folder in (root / spec.folder, root):
        if all((folder / name).is_file() for name in spec.files):
            return folder
    return None


def _placement(spec: CifarSpec, root: Path) -> str:
    return (f"place {spec.folder}/ (from {spec.archive}, "
            f"https://www.cs.toronto.edu/~kriz/cifar.html) under {root}")


def _missing_message(spec: CifarSpec, root: Path) -> str:
    for folder in (root / spec.folder, root):
        present = [name for name in spec.files if (folder / name).is_file()]
        if present:
            absent = [name for name in spec.files if name not in present]
            return (f"{spec.title} incomplete: {folder / absent[0]} is missing; "
                    f"{_placement(spec, root)}, or pass --download")
    return (f"{spec.title} not found under {root}: place {spec.folder}/ (from {spec.archive}) "
            f"there, or pass --download")


def load_cifar(spec: CifarSpec, root: Path, download: bool) -> ImageDataset:
    """Read a CIFAR variant from ``root``; fetch it first with torchvision if asked to."""
    folder = _locate(spec, root)
    if folder is None and download:
        fetch_with_torchvision(spec.title, spec.torchvision_class, root,
                               [{"train": True}, {"train": False}], _placement(spec, root))
        folder = _locate(spec, root)
    if folder is None:
        raise DataError(_missing_message(spec, root))

    def read(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [read_cifar_batch(folder / n, spec.label_key, spec.num_classes, spec.archive)
                 for n in names]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    train_x, train_y = read(spec.train_files)
    test_x, test_y = read(spec.test_files)
    return ImageDataset(spec.name, train_x, train_y, test_x, test_y, spec.num_classes,
                        spec.mean, spec.std, hflip=True)


@DATASETS.register("cifar10")
def load_cifar10(root: Path, download: bool) -> ImageDataset:
    """CIFAR-10: 50,000 train / 10,000 test 3x32x32 images, 10 classes."""
    return load_cifar(CIFAR10, root, download)


@DATASETS.register("cifar100")
def load_cifar100(root: Path, download: bool) -> ImageDataset:
    """CIFAR-100 (fine labels): 50,000 train / 10,000 test 3x32x32 images, 100 classes."""
    return load_cifar(CIFAR100, root, download)
