"""Rebuilding NAS-Bench-201 models from checkpoint payloads (``kind`` ``nb201-*``)."""

from __future__ import annotations

from typing import Any

from torch import nn

from robustnas.errors import CheckpointError


def nb201_model_from_arch(kind: str, arch: dict[str, Any], source: str) -> nn.Module:
    """The (untrained) model of an ``nb201-network`` or ``nb201-supernet`` payload."""
    from robustnas.space.nb201.genotype import nb201_genotype_from_dict
    from robustnas.space.nb201.network import NB201Network
    from robustnas.space.nb201.supernet import NB201SuperNet

    args = dict(arch)
    if kind == "nb201-network":
        genotype = nb201_genotype_from_dict(args.pop("genotype"), source)
        return NB201Network(genotype, **args)
    if kind == "nb201-supernet":
        return NB201SuperNet(**args)
    raise CheckpointError(f"{source}: unknown model kind {kind!r}")
