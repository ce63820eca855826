"""Size of a DARTS genotype's network: what ``robustnas info`` prints for it."""

from __future__ import annotations

from typing import Any

from robustnas.errors import UsageError
from robustnas.space.complexity import count_macs, count_parameters
from robustnas.space.darts.genotype import Genotype
from robustnas.space.darts.network import Network


def network_info(genotype: Genotype, channels: int = 36, layers: int = 20, classes: int = 10,
                 in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
    """Parameters (without and with the auxiliary head) and MACs of ``genotype``'s network."""
    if channels % 2:
        raise UsageError(f"--channels must be even (reduction cells halve it), got {channels}")
    net = Network(genotype, C=channels, num_classes=classes, layers=layers, auxiliary=True,
                  in_channels=in_channels)
    return {
        "space": "darts", "kind": "network",
        "genotype": genotype.provenance.get("name", genotype.describe()),
        "channels": channels, "layers": layers, "classes": classes,
        "in_channels": in_channels, "image_size": image_size,
        "params": count_parameters(net),
        "params_with_auxiliary": count_parameters(net, include_auxiliary=True),
        "macs": count_macs(net, (in_channels, image_size, image_size)),
        "describe": genotype.describe(),
    }
