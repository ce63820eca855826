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


def print_nb201_info(args: Any) -> int:
    """``robustnas info`` for a NAS-Bench-201 cell (``--layers`` counts all 3 stages' cells;
    defaults are the benchmark's: C 16, 15 cells, 10 classes, 3x32x32)."""
    import json

    from robustnas.space.spaces import nb201_cells_per_stage

    info = nb201_info(args.genotype, channels=args.channels or 16,
                      cells_per_stage=nb201_cells_per_stage(args.layers or 15),
                      classes=args.classes or 10, in_channels=args.in_channels or 3,
                      image_size=args.image_size or 32)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"cell:     {info['genotype']}")
    print(f"network:  NAS-Bench-201, C={info['channels']} N={info['cells_per_stage']} "
          f"classes={info['classes']} input {info['in_channels']}x{info['image_size']}x"
          f"{info['image_size']}")
    print(f"params:   {info['params']:,} ({info['params'] / 1e6:.6f}M)")
    print(f"MACs:     {info['macs']:,} ({info['macs'] / 1e6:.2f}M per image)")
    return 0
