"""Size of a NAS-Bench-201 cell's network: what ``robustnas info --space nb201`` prints."""

from __future__ import annotations

from typing import Any

from robustnas.errors import UsageError
from robustnas.space.complexity import count_macs, count_parameters
from robustnas.space.nb201.genotype import NB201Genotype, load_nb201_genotype
from robustnas.space.nb201.network import NB201Network


def nb201_info(spec: str | NB201Genotype, channels: int = 16, cells_per_stage: int = 5,
               classes: int = 10, in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
    """Parameters and MACs of ``spec``'s NAS-Bench-201 network (defaults: the benchmark's)."""
    for name, value, low in (("channels", channels, 1), ("cells_per_stage", cells_per_stage, 1),
                             ("classes", classes, 1), ("in_channels", in_channels, 1),
                             ("image_size", image_size, 4)):
        if value < low:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    genotype = load_nb201_genotype(spec)
    net = NB201Network(genotype, C=channels, N=cells_per_stage, num_classes=classes,
                       in_channels=in_channels)
    return {
        "genotype": genotype.to_string(), "channels": channels,
        "cells_per_stage": cells_per_stage, "classes": classes, "in_channels": in_channels,
        "image_size": image_size, "params": count_parameters(net),
        "macs": count_macs(net, (in_channels, image_size, image_size)),
    }
