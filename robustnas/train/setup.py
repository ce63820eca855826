"""Builders for a retraining run: data, network, optimiser and learning-rate schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from robustnas.distributed import DistInfo
from robustnas.errors import UsageError
from robustnas.train.config import RetrainConfig
from robustnas.train.heldout import selection_split


@dataclass
class RetrainData:
    """The training loader and the held-out evaluation subset (uint8, on the device).

    ``selection`` describes the split that selects ``best.pt`` (see
    :func:`robustnas.train.heldout.selection_split`).
    """

    train: Any
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_size: int
    selection: dict[str, Any]
    cutout: int = 0  # the cutout side used (config.cutout, or its default for these images)


def load_data(config: RetrainConfig, device: torch.device, info: DistInfo) -> RetrainData:
    """The training split minus the validation carve, and the model-selection images.

    By default ``val_n`` training images are held out for model selection; with
    ``select_on: test`` the whole training split trains and ``eval_n`` test images select.

    Augmentation (when ``config.augment``): random crop with padding 4 on 32×32 images
    (image size / 8 in general), horizontal flip where it preserves labels, and cutout of
    ``config.cutout_for(image size)`` pixels (the objective's default, DARTS' 16 on 32×32,
    scales with the image unless set) whose hole has the dataset's mean colour (as in
    DARTS, which cuts after normalisation). The global batch is sharded across processes.
    """
    from robustnas.data import DeviceLoader, default_augment, load_dataset

    ds = load_dataset(config.dataset, root=config.data_root, download=config.download,
                      **config.dataset_options)
    train_x, train_y, eval_x, eval_y, selection = selection_split(
        config, ds.train_x, ds.train_y, ds.test_x, ds.test_y)
    if config.batch_size % info.world_size:
        raise UsageError(f"batch_size {config.batch_size} is not divisible by the "
                         f"{info.world_size} processes (it is the global batch size)")
    if config.batch_size > len(train_y):
        raise UsageError(f"batch_size {config.batch_size} is larger than the training split "
                         f"of {ds.name} ({len(train_y)} images after the validation carve)")
    cutout = config.cutout_for(ds.image_size) if config.augment else 0
    if cutout and cutout >= ds.image_size:
        # A hole as large as the image blanks whole samples: training would see no digits.
        raise UsageError(f"cutout {cutout} is not smaller than the {ds.image_size}-pixel "
                         f"images of {ds.name}; use --cutout {ds.image_size // 2} or less "
                         f"(DARTS uses 16 on 32x32 images; unset, it scales with the image) "
                         f"or --cutout 0")
    augment = None
    if config.augment:
        augment = default_augment(ds, cutout=cutout, darts_cutout_fill=True)
    train = DeviceLoader(train_x, train_y, config.batch_size, shuffle=True,
                         augment=augment, seed=config.seed, drop_last=True, device=device,
                         num_shards=info.world_size, shard_index=info.rank)
    return RetrainData(train, eval_x.to(device), eval_y.to(device), ds.num_classes,
                       ds.in_channels, ds.image_size, tuple(ds.mean), tuple(ds.std),
                       len(train_y), selection, cutout=cutout)


def build_network(config: RetrainConfig, genotype: Any | None,
                  data: RetrainData) -> nn.Module:
    """The discrete network; the auxiliary head exists only when its weight is positive.

    Without a genotype: the joint ensemble of ``config.ensemble``, or the hand-crafted
    network ``config.genotype`` names (see :mod:`robustnas.space.models`).
    """
    if genotype is None:
        from robustnas.space.models import build_architecture, build_ensemble

        common = dict(num_classes=data.num_classes, in_channels=data.in_channels,
                      mean=data.mean, std=data.std, C=config.C, layers=config.layers)
        if config.ensemble:
            ensemble = build_ensemble(config.ensemble, combine=config.ensemble_combine,
                                      inits=config.ensemble_init, **common)
            ensemble.check_input(data.in_channels, data.image_size)  # before anything is written
            return ensemble
        return build_architecture(config.genotype, **common)
    from robustnas.space.spaces import space_of_genotype

    space = space_of_genotype(genotype)
    space.check_sizes(config.C, config.layers, "retrain")
    return space.network(genotype, C=config.C, layers=config.layers,
                         num_classes=data.num_classes, in_channels=data.in_channels,
                         mean=data.mean, std=data.std, auxiliary=config.auxiliary_weight > 0)


def place_network(config: RetrainConfig, net: nn.Module, info: DistInfo,
                  device: torch.device) -> nn.Module:
    """``net`` on ``device`` (channels-last if asked, synchronised batch norm under
    torchrun when ``sync_bn``)."""
    from robustnas import distributed as D

    net.to(device)
    if config.channels_last:
        net.to(memory_format=torch.channels_last)
    if config.sync_bn and info.enabled:
        net = D.convert_sync_batchnorm(net, device)
    return net


def wrap_parallel(net: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``net`` under torchrun, else ``net`` itself."""
    if not info.enabled:
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda"
                                   else None)


def build_optimizer(config: RetrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay on all parameters (as DARTS and AdvRush do)."""
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def build_scheduler(config: RetrainConfig,
                    optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: cosine to ``lr_min`` over ``epochs``, or steps at milestones."""
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs,
                                                          eta_min=config.lr_min)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.lr_milestones),
                                                gamma=config.lr_gamma)


def drop_path_at(config: RetrainConfig, epoch: int) -> float:
    """DARTS' linear drop-path schedule: ``drop_path · epoch / epochs``."""
    return config.drop_path * epoch / config.epochs
