"""The search's data: the two halves of the search split as device-resident loaders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from robustnas import distributed as D
from robustnas.errors import UsageError
from robustnas.search.config import SearchConfig


@dataclass
class SearchData:
    train: Any
    val: Any
    val_eval: Any
    val_probe: Any  # the unsharded validation split, for rank 0's end-of-epoch probes
    num_classes: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def load_search_data(config: SearchConfig, device: torch.device, info: D.DistInfo) -> SearchData:
    from robustnas.data import DeviceLoader, default_augment, load_dataset, search_split
    from robustnas.runtime import PRECISIONS

    ds = load_dataset(config.dataset, root=config.data_root, download=config.download,
                      **config.dataset_options)
    train_x, train_y, val_x, val_y = search_split(ds, portion=config.train_portion,
                                                  seed=config.seed)
    augment = default_augment(ds) if config.augment else None
    if min(len(train_y), len(val_y)) < config.batch_size:
        raise UsageError(f"batch_size {config.batch_size} is larger than the search split "
                         f"({min(len(train_y), len(val_y))} images)")

    shards = dict(num_shards=info.world_size, shard_index=info.rank)
    dtype = PRECISIONS[config.precision]

    def loader(x: torch.Tensor, y: torch.Tensor, seed: int) -> Any:
        return DeviceLoader(x, y, config.batch_size, shuffle=True, augment=augment, seed=seed,
                            drop_last=True, device=device, dtype=dtype, **shards)

    def in_order(**sharding: int) -> Any:
        return DeviceLoader(val_x, val_y, config.batch_size, shuffle=False, augment=None,
                            drop_last=False, device=device, dtype=dtype, **sharding)

    val_eval = in_order(**shards)
    val_probe = in_order() if info.enabled else val_eval
    return SearchData(loader(train_x, train_y, config.seed), loader(val_x, val_y, config.seed + 1),
                 val_eval, val_probe, ds.num_classes, ds.in_channels, tuple(ds.mean),
                 tuple(ds.std))
