"""Size of a NARes architecture's network: parameters and MACs (what ``info`` prints)."""

from __future__ import annotations

from typing import Any

from robustnas.errors import UsageError
from robustnas.space.complexity import count_macs, count_parameters
from robustnas.space.nares.genotype import NAResGenotype, load_nares_genotype
from robustnas.space.nares.network import NAResNetwork


def nares_info(spec: str | NAResGenotype, classes: int = 10, in_channels: int = 3,
               image_size: int = 32, strict: bool = False) -> dict[str, Any]:
    """Parameters and MACs of ``spec``'s network (defaults: CIFAR-10, as the benchmark).

    ``strict`` refuses architectures outside the benchmark's choices. MACs are counted by
    running one forward pass (:func:`~robustnas.space.complexity.count_macs`), which takes
    seconds on a CPU for the largest benchmark networks.
    """
    for name, value, low in (("classes", classes, 1), ("in_channels", in_channels, 1),
                             ("image_size", image_size, 4)):
        if value < low:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    genotype = load_nares_genotype(spec, strict=strict)
    net = NAResNetwork(genotype, num_classes=classes, in_channels=in_channels)
    return {"genotype": genotype.to_string(), "depths": list(genotype.depths),
            "widths": list(genotype.widths), "channels": list(genotype.channels()),
            "wrn": genotype.wrn_name(), "in_benchmark": genotype.in_benchmark(),
            "classes": classes, "in_channels": in_channels, "image_size": image_size,
            "params": count_parameters(net),
            "macs": count_macs(net, (in_channels, image_size, image_size))}
