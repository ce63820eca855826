"""The NARes space (Lu et al., "A Neural Architecture Dataset for Adversarial Robustness") as a
:class:`~robustnas.space.protocol.SearchSpace`.

A genotype fixes the whole network (per-stage depth and widen factor of a WideResNet), so
``C`` and ``layers`` do not apply. There is no differentiable supernet: the space is searched
on its table (``robustnas table search --bench nares``) or through a study's sampler source.
Genotypes load leniently (any depth and widen factor >= 1, for networks small enough to train
on a CPU); the table reader checks the benchmark's choice sets.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from robustnas.space.nares.genotype import (
    NARES_GENOTYPE_FORMAT,
    NUM_ARCHS,
    NAResGenotype,
    is_nares_string,
    load_nares_genotype,
    nares_genotype_from_dict,
)
from robustnas.space.protocol import LIPSCHITZ_BOUND, SUPERNET, ModelKind, SearchSpace
from robustnas.space.spaces import register_space


class NAResSpace(SearchSpace):
    """15,625 WideResNets: stage ``i`` has ``D_i`` blocks and widen factor ``W_i``."""

    name = "nares"
    genotype_format = NARES_GENOTYPE_FORMAT
    capabilities = frozenset({LIPSCHITZ_BOUND})
    instead = {SUPERNET: "search it on its table (robustnas table search --bench nares) or "
                         "with a study sampler source (space: nares)"}
    sized = False
    size = NUM_ARCHS
    benches = ("nares",)

    def recognises(self, text: str) -> bool:  # noqa: D102
        return is_nares_string(text.strip())

    def load(self, spec: Any) -> NAResGenotype:  # noqa: D102
        return load_nares_genotype(spec, strict=False)

    def from_dict(self, data: Any, source: str = "genotype") -> NAResGenotype:  # noqa: D102
        return nares_genotype_from_dict(data, source, strict=False)

    def describe(self, genotype: Any) -> str:  # noqa: D102
        return genotype.to_string()

    def network(self, genotype: Any, *, C: int, layers: int, num_classes: int,
                in_channels: int, mean: Sequence[float] | None, std: Sequence[float] | None,
                auxiliary: bool = False) -> nn.Module:  # noqa: D102
        from robustnas.space.nares.network import NAResNetwork

        return NAResNetwork(genotype, num_classes=num_classes, in_channels=in_channels,
                            mean=mean, std=std)

    def model_kinds(self) -> Sequence[ModelKind]:  # noqa: D102
        from robustnas.space.nares.network import rebuild_nares_network

        return (ModelKind("nares-network", rebuild_nares_network,
                          genotype=lambda p, source: self.from_dict(p["arch"]["genotype"],
                                                                    source)),)

    def info(self, genotype: Any, *, C: int, layers: int, classes: int, in_channels: int,
             image_size: int) -> dict[str, Any]:
        """Parameters, MACs, the stages' channels and the WRN name."""
        from robustnas.space.nares.info import nares_info

        info = nares_info(genotype, classes=classes, in_channels=in_channels,
                          image_size=image_size)
        stages = ", ".join(f"{d}x{c}" for d, c in zip(genotype.depths, info["channels"]))
        return {**info, "space": self.name, "stage_channels": info["channels"],
                "channels": None, "layers": None, "describe": info["genotype"],
                "network": f"NARes WideResNet ({info['wrn']}; blocks x channels {stages})"}

    def draw(self, rng: random.Random, provenance: dict[str, Any]) -> NAResGenotype:  # noqa: D102
        from robustnas.space.nares.sampler import draw

        return draw(rng, provenance)

    def suggest(self, trial: Any, provenance: dict[str, Any] | None = None) -> NAResGenotype:  # noqa: D102
        from robustnas.space.nares.sampler import suggest

        return suggest(trial, provenance)

    def draw_pictures(self, genotype: Any, out_dir: Path, prefix: str) -> list[Path]:  # noqa: D102
        from robustnas.io import ensure_writable_dir
        from robustnas.space.nares.picture import draw_nares

        out = ensure_writable_dir(out_dir)
        return draw_nares(genotype, out / f"{prefix}stages")

    def images(self, model: nn.Module, genotype: Any) -> dict[str, np.ndarray]:  # noqa: D102
        from robustnas.space.nares.picture import nares_image

        return {"network/stages": nares_image(genotype)}

    def lipschitz_bound(self, model: nn.Module,
                        bound: Callable[[nn.Module], float]) -> float:  # noqa: D102
        return float(model.lipschitz_bound(bound))  # type: ignore[operator]


NARES = register_space(NAResSpace())
