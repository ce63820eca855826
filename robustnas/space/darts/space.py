"""The DARTS space (Liu et al., ICLR 2019) as a :class:`~robustnas.space.protocol.SearchSpace`.

Two cell types (normal, reduction), 4 intermediate nodes with 2 inputs each, 8 candidate
operations; the network stacks ``layers`` cells with reductions at one and two thirds of
the depth. Modules: :mod:`.ops`, :mod:`.genotype`, :mod:`.catalogue` (published genotypes),
:mod:`.supernet`, :mod:`.network`, :mod:`.sampler`, :mod:`.suggest`, :mod:`.info`,
:mod:`.lipschitz` (Lipschitz bounds of networks and supernets) and :mod:`.lipschitz_reg`
(the log-normal Lipschitz regulariser's adapter).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from robustnas.space.darts.catalogue import GENOTYPES, load_genotype
from robustnas.space.darts.genotype import GENOTYPE_FORMAT, Genotype, genotype_from_dict
from robustnas.space.darts.sampler import darts_cell_count, draw_genotype
from robustnas.space.protocol import (
    LIPSCHITZ_BOUND,
    LIPSCHITZ_REGULARIZER,
    SUPERNET,
    ModelKind,
    SearchSpace,
)
from robustnas.space.spaces import register_space


def _rebuild_network(payload: Mapping[str, Any], source: str) -> nn.Module:
    from robustnas.space.darts.network import Network

    return Network(genotype_from_dict(payload["genotype"], source), **dict(payload["arch"]))


def _rebuild_supernet(payload: Mapping[str, Any], source: str) -> nn.Module:
    from robustnas.space.darts.supernet import SuperNet

    return SuperNet(**dict(payload["arch"]))


def _describe_network(model: nn.Module) -> dict[str, Any]:
    return {"kind": "network", "arch": dict(model.config),  # type: ignore[arg-type]
            "genotype": model.genotype.to_dict()}  # type: ignore[union-attr, operator]


def _describe_supernet(model: nn.Module) -> dict[str, Any]:
    return {"kind": "supernet", "arch": dict(model.config)}  # type: ignore[arg-type]


class DartsSpace(SearchSpace):
    """The DARTS cell space."""

    name = "darts"
    genotype_format = GENOTYPE_FORMAT
    capabilities = frozenset({SUPERNET, LIPSCHITZ_REGULARIZER, LIPSCHITZ_BOUND})
    min_layers = 3
    layers_meaning = "cells, two of them reduction cells"
    size = darts_cell_count() ** 2

    def owns(self, data: Any) -> bool:  # files written before the format tag are DARTS'
        return isinstance(data, dict) and data.get("format", GENOTYPE_FORMAT) == GENOTYPE_FORMAT

    def recognises(self, text: str) -> bool:  # noqa: D102
        return text.strip().upper() in GENOTYPES

    def load(self, spec: Any) -> Genotype:  # noqa: D102
        return spec if isinstance(spec, Genotype) else load_genotype(spec)

    def from_dict(self, data: Any, source: str = "genotype") -> Genotype:  # noqa: D102
        return genotype_from_dict(data, source)

    def name_of(self, genotype: Any) -> str:
        """Its recorded name (``DARTS_V2``, ``RANDOM_0_3``), a published genotype it equals,
        or ``searched``/``custom`` with a fingerprint of the cells (the same cell gets the
        same six hex digits in every report) and what the search recorded."""
        name = genotype.provenance.get("name")
        if name:
            return str(name)
        known = next((n for n in GENOTYPES.names() if GENOTYPES.get(n) == genotype), None)
        if known:
            return known
        cells = {k: v for k, v in genotype.to_dict().items() if k not in ("provenance",)}
        digest = hashlib.sha1(json.dumps(cells, sort_keys=True).encode()).hexdigest()[:6]
        prov = genotype.provenance
        if "regularizer" not in prov and "epoch" not in prov:
            return f"custom {digest}"
        parts = [f"{prov['regularizer']} on {prov.get('dataset', '?')}" if "regularizer" in prov
                 else str(prov.get("dataset", ""))]
        parts += [f"{key} {prov[key]}" for key in ("seed", "epoch") if key in prov]
        return f"searched {digest}: {', '.join(p for p in parts if p)}"

    def network(self, genotype: Any, *, C: int, layers: int, num_classes: int,
                in_channels: int, mean: Sequence[float] | None, std: Sequence[float] | None,
                auxiliary: bool = False) -> nn.Module:  # noqa: D102
        from robustnas.space.darts.network import Network

        return Network(genotype, C=C, num_classes=num_classes, layers=layers,
                       auxiliary=auxiliary, in_channels=in_channels, mean=mean, std=std)

    def supernet(self, *, C: int, layers: int, num_classes: int, in_channels: int,
                 mean: Sequence[float] | None, std: Sequence[float] | None,
                 steps: int = 4, relaxation: Any = None) -> nn.Module:  # noqa: D102
        from robustnas.space.darts.supernet import SuperNet

        return SuperNet(C=C, num_classes=num_classes, layers=layers, steps=steps,
                        in_channels=in_channels, mean=mean, std=std, relaxation=relaxation)

    def model_kinds(self) -> Sequence[ModelKind]:  # noqa: D102
        return (ModelKind("network", _rebuild_network, _describe_network,
                          genotype=lambda p, source: genotype_from_dict(p["genotype"], source)),
                ModelKind("supernet", _rebuild_supernet, _describe_supernet))

    def info(self, genotype: Any, *, C: int, layers: int, classes: int, in_channels: int,
             image_size: int) -> dict[str, Any]:
        """Parameters without and with the auxiliary head, and MACs."""
        from robustnas.space.darts.info import network_info

        return network_info(genotype, channels=C, layers=layers, classes=classes,
                            in_channels=in_channels, image_size=image_size)

    def draw(self, rng: random.Random, provenance: dict[str, Any]) -> Genotype:  # noqa: D102
        return draw_genotype(rng, provenance)

    def suggest(self, trial: Any, provenance: dict[str, Any] | None = None) -> Genotype:  # noqa: D102
        from robustnas.space.darts.suggest import suggest_genotype

        return suggest_genotype(trial, provenance)

    def draw_pictures(self, genotype: Any, out_dir: Path, prefix: str) -> list[Path]:  # noqa: D102
        from robustnas.viz import draw_genotype

        pictures = draw_genotype(genotype, out_dir, prefix=prefix)
        return [p for paths in pictures.values() for p in paths]

    def images(self, model: nn.Module, genotype: Any) -> dict[str, np.ndarray]:  # noqa: D102
        from robustnas.viz import alpha_heatmap, cell_image, darts_kept_cells

        probs = model.alpha_softmax()  # type: ignore[operator]
        primitives: Sequence[str] = model.primitives  # type: ignore[assignment]
        out = {f"alpha/{kind}": alpha_heatmap(probs[kind], primitives, f"softmax(α) {kind}",
                                              kept=darts_kept_cells(getattr(genotype, kind),
                                                                    primitives))
               for kind in ("normal", "reduce")}
        out["cell/normal"] = cell_image(genotype.normal, genotype.normal_concat)
        out["cell/reduce"] = cell_image(genotype.reduce, genotype.reduce_concat)
        return out

    def lipschitz_adapter(self, model: nn.Module, options: dict[str, Any]) -> Any:  # noqa: D102
        from robustnas.space.darts.lipschitz_reg import DartsLipschitzAdapter

        return DartsLipschitzAdapter(model, options)

    def lipschitz_bound(self, model: nn.Module,
                        bound: Callable[[nn.Module], float]) -> float:
        """The model's own bound (``robustnas/space/darts/lipschitz.py``)."""
        return float(model.lipschitz_bound(bound))  # type: ignore[operator]


DARTS = register_space(DartsSpace())
