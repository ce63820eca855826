"""Size of a genotype's network: what ``robustnas info`` prints."""

from __future__ import annotations

from typing import Any

from robustnas.errors import UsageError
from robustnas.space.complexity import count_macs, count_parameters
from robustnas.space.genotype import load_genotype
from robustnas.space.network import Network


def genotype_info(spec: str, channels: int = 36, layers: int = 20, classes: int = 10,
                  in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
    """Parameters (without and with the auxiliary head) and MACs of ``spec``'s network.

    ``spec`` may also name a hand-crafted network (``resnet18@0.25``) or a model checkpoint
    (``.pt``); see :func:`robustnas.space.architecture.model_info`.
    """
    for name, value, low in (("channels", channels, 2), ("layers", layers, 3),
                             ("classes", classes, 1), ("in_channels", in_channels, 1),
                             ("image_size", image_size, 4)):
        if value < low:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    if channels % 2:
        raise UsageError(f"--channels must be even (reduction cells halve it), got {channels}")
    from robustnas.space.architecture import is_handcrafted_spec, model_info

    if is_handcrafted_spec(spec) or str(spec).endswith((".pt", ".pth")):
        return model_info(spec, channels=channels, layers=layers, classes=classes,
                          in_channels=in_channels, image_size=image_size)
    genotype = load_genotype(spec)
    net = Network(genotype, C=channels, num_classes=classes, layers=layers, auxiliary=True,
                  in_channels=in_channels)
    return {
        "genotype": genotype.provenance.get("name", str(spec)),
        "channels": channels, "layers": layers, "classes": classes,
        "in_channels": in_channels, "image_size": image_size,
        "params": count_parameters(net),
        "params_with_auxiliary": count_parameters(net, include_auxiliary=True),
        "macs": count_macs(net, (in_channels, image_size, image_size)),
        "describe": genotype.describe(),
    }
