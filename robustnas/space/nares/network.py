"""The NARes network: the TRADES/RobustBench WideResNet with per-stage depth and width.

Stem 3x3 convolution to 16 channels; stage ``i`` (strides 1, 2, 2) has ``D_i``
pre-activation basic blocks (:class:`~robustnas.space.handcrafted.wideresnet.WideBlock`)
with 16·W1, 32·W2, 64·W3 channels; final BN + ReLU, global average pooling, linear
classifier. With all ``D_i = n`` and ``W_i = k`` this is exactly WRN-(6n+4)-k of
:mod:`robustnas.space.handcrafted.wideresnet` (``5,10,5,10,5,10``: WRN-34-10, 46,160,474
parameters at 10 classes). Inputs are images in [0, 1], normalised inside the model;
``forward`` returns logits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from robustnas.errors import CheckpointError, GenotypeError
from robustnas.space.handcrafted.wideresnet import WideStages
from robustnas.space.nares.genotype import (
    BASE_CHANNELS,
    NAResGenotype,
    load_nares_genotype,
    nares_genotype_from_dict,
)

PAYLOAD_KIND = "nares-network"
STEM_CHANNELS = 16


class NAResNetwork(WideStages):
    """The WideResNet of one NARes genotype (see the module docstring).

    The genotype is validated non-strictly here, so that tiny networks (``1,1,1,1,1,1``)
    can be trained on a CPU; whether it is a benchmark architecture is the codec's concern.
    Hand-crafted machinery is reused: normalisation inside, ``forward_features`` (ensembles)
    and the Lipschitz bound.
    """

    payload_kind = PAYLOAD_KIND
    space = "nares"

    def __init__(self, genotype: NAResGenotype | str, num_classes: int = 10,
                 in_channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        genotype = load_nares_genotype(genotype, strict=False)
        if num_classes < 1 or in_channels < 1:
            raise ValueError("num_classes and in_channels must be positive")
        super().__init__(f"nares-{genotype.to_string()}", 1.0, num_classes, in_channels,
                         mean, std)
        self.genotype = genotype
        # The checkpoint form: constructor arguments with the genotype as JSON (the
        # hand-crafted name/width fields would not rebuild this network).
        self.config = {"num_classes": num_classes, "in_channels": in_channels,
                       "mean": self.config["mean"], "std": self.config["std"]}
        self.build_stages(in_channels, STEM_CHANNELS,
                          [(depth, BASE_CHANNELS[i] * width) for i, (depth, width)
                           in enumerate(zip(genotype.depths, genotype.widths))], num_classes)

    def payload_arch(self) -> dict[str, Any]:
        """Constructor arguments with the genotype's JSON form (for checkpoints)."""
        return {**self.config, "genotype": self.genotype.to_dict()}

    def describe(self) -> str:
        """``NARes 5,10,5,10,5,10 (WRN-34-10)``."""
        return f"NARes {self.genotype.describe()}"


def nares_model_from_arch(arch: Mapping[str, Any], source: str = "checkpoint") -> NAResNetwork:
    """Rebuild the (untrained) network of a payload's ``arch`` (:meth:`payload_arch`).

    The genotype is read non-strictly: a checkpoint of a tiny CPU network is valid.
    """
    if not isinstance(arch, Mapping) or "genotype" not in arch:
        raise CheckpointError(f"{source}: a NARes network's arch needs its 'genotype'")
    args = dict(arch)
    try:
        genotype = nares_genotype_from_dict(args.pop("genotype"), source, strict=False)
    except GenotypeError as exc:
        raise CheckpointError(str(exc)) from None
    unknown = sorted(set(args) - {"num_classes", "in_channels", "mean", "std"})
    if unknown:
        raise CheckpointError(f"{source}: unknown NARes network argument(s) "
                              f"{', '.join(map(str, unknown))}")
    return NAResNetwork(genotype, **args)


def rebuild_nares_network(payload: Mapping[str, Any], source: str = "checkpoint"
                          ) -> NAResNetwork:
    """:func:`nares_model_from_arch` of ``payload["arch"]`` (a ``ModelKind.rebuild``)."""
    return nares_model_from_arch(payload["arch"], source)
