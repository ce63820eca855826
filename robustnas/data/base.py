"""The in-memory dataset type, the dataset registry and :func:`load_dataset`.

Every dataset is a module of :mod:`robustnas.data` that registers a factory in
:data:`DATASETS` (the registry imports the package's modules on its first lookup)::

    @DATASETS.register("name")
    def load(root: Path, download: bool, *, option: int = 1) -> ImageDataset: ...

The factory's keyword-only parameters are its options; :func:`load_dataset` rejects any
other option with a :class:`UsageError`.

Images are stored as ``uint8`` tensors (N, C, H, W) and become floats in [0, 1] only batch by
batch (see :class:`robustnas.data.DeviceLoader`). Normalisation is not applied to the data:
``mean``/``std`` are handed to the model, whose first layer normalises.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from robustnas.errors import DataError, UsageError
from robustnas.registry import Registry

DatasetFactory = Callable[..., "ImageDataset"]

#: Every module of :mod:`robustnas.data` may register datasets here (imported on first
#: lookup, so a new dataset is a new file).
DATASETS: Registry[DatasetFactory] = Registry("dataset", discover=("robustnas.data",))

DEFAULT_ROOT = Path("data")


@dataclass
class ImageDataset:
    """A classification dataset held in memory as ``uint8`` tensors.

    ``mean``/``std`` are per-channel statistics of the training images scaled to [0, 1];
    ``hflip`` says whether a horizontal flip preserves the label (not for digits).
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool = True

    def __post_init__(self) -> None:
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        for split, x, y in (("train", self.train_x, self.train_y),
                            ("test", self.test_x, self.test_y)):
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise DataError(f"{self.name}: {split} images must be uint8 (N, C, H, W), "
                                f"got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
                raise DataError(f"{self.name}: {split} labels must be int64 (N,) matching "
                                f"{len(x)} images, got {y.dtype} {tuple(y.shape)}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise DataError(f"{self.name}: {split} labels outside 0..{self.num_classes - 1}")
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise DataError(f"{self.name}: train images {tuple(self.train_x.shape[1:])} and "
                            f"test images {tuple(self.test_x.shape[1:])} differ in shape")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise DataError(f"{self.name}: mean/std need {self.in_channels} values")

    @property
    def in_channels(self) -> int:
        """Number of image channels C."""
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        """Image height H (all registered datasets are square)."""
        return int(self.train_x.shape[2])

    def __repr__(self) -> str:
        c, h, w = self.train_x.shape[1:]
        return (f"ImageDataset({self.name!r}, train={len(self.train_y)}, "
                f"test={len(self.test_y)}, shape={c}x{h}x{w}, classes={self.num_classes})")


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of ``uint8`` images scaled to [0, 1]."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double() / 255.0
    mean = flat.mean(dim=1)
    # A constant channel would make the model's Normalize divide by zero.
    std = flat.std(dim=1, unbiased=False).clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


def _options_of(factory: DatasetFactory) -> list[str]:
    params = inspect.signature(factory).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def load_dataset(name: str, root: str | Path | None = None, download: bool = False,
                 **options: object) -> ImageDataset:
    """Load dataset ``name`` (see ``DATASETS.names()``) from ``root`` (default ``./data``).

    ``download=True`` fetches missing CIFAR/SVHN files with torchvision when it is usable.
    ``options`` are dataset specific (e.g. ``synthetic``: ``num_classes``, ``image_size``).
    Raises :class:`UsageError` for an unknown name or option and :class:`DataError` for
    missing or malformed files.
    """
    factory = DATASETS.get(name)
    allowed = _options_of(factory)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) or "none"
        raise UsageError(f"unknown option(s) for dataset {name!r}: {', '.join(unknown)} "
                         f"(accepted: {accepted})")
    path = DEFAULT_ROOT if root is None else Path(root).expanduser()
    return factory(path, bool(download), **options)


def as_int_option(dataset: str, key: str, value: object, minimum: int) -> int:
    """Coerce a dataset option to an int >= ``minimum`` or raise :class:`UsageError`."""
    try:
        number = int(str(value)) if not isinstance(value, int) else value
    except ValueError:
        raise UsageError(f"dataset {dataset!r}: option {key} must be an integer, "
                         f"got {value!r}") from None
    if isinstance(value, bool) or number < minimum:
        raise UsageError(f"dataset {dataset!r}: option {key} must be an integer >= {minimum}, "
                         f"got {value!r}")
    return number


def check_labels(path: Path, labels: Sequence[int] | torch.Tensor, num_classes: int) -> None:
    """Raise :class:`DataError` naming ``path`` when a label is outside 0..num_classes-1."""
    y = torch.as_tensor(labels)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataError(f"{path}: labels outside 0..{num_classes - 1} "
                        f"(found {int(y.min())}..{int(y.max())}); the file is not in the "
                        "expected format")
