"""Datasets, splits, batched on-device augmentation and the device-resident loader.

``load_dataset(name, root, download, **options)`` returns an :class:`ImageDataset` of
``uint8`` images; registered names: ``cifar10``, ``cifar100``, ``svhn``, ``digits``
(bundled, offline), ``synthetic`` (generated, for tests), and your own data: ``imagefolder``
(class sub-folders of PNG/JPEG files) and ``npz`` (arrays ``x``, ``y``). A new dataset is a
new module here that registers a factory in :data:`DATASETS`; the registry imports this
package's modules on its first lookup.
"""

from robustnas.data.augment import Augment, AugmentParams, default_augment
from robustnas.data.base import DATASETS, ImageDataset, channel_stats, load_dataset
from robustnas.data.loader import DeviceLoader, Loaders, build_loaders, derive_seed
from robustnas.data.split import search_split, split_indices

__all__ = [
    "DATASETS",
    "Augment",
    "AugmentParams",
    "DeviceLoader",
    "ImageDataset",
    "Loaders",
    "build_loaders",
    "channel_stats",
    "default_augment",
    "derive_seed",
    "load_dataset",
    "search_split",
    "split_indices",
]
