"""The NAS-Bench-201 space (Dong & Yang, ICLR 2020) as a
:class:`~robustnas.space.protocol.SearchSpace`.

``layers`` counts the cells of all three stages, so NAS-Bench-201's N = 5 is ``layers: 15``;
its standard network is C = 16 with 15 cells.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from robustnas.space.nb201.genotype import (
    EDGES,
    NB201_GENOTYPE_FORMAT,
    NB201Genotype,
    load_nb201_genotype,
    nb201_genotype_from_dict,
)
from robustnas.space.nb201.ops import NB201_OPS
from robustnas.space.nb201.sampler import NUM_CELLS
from robustnas.space.protocol import (
    LIPSCHITZ_BOUND,
    LIPSCHITZ_REGULARIZER,
    SUPERNET,
    ModelKind,
    SearchSpace,
)
from robustnas.space.spaces import register_space


def cells_per_stage(layers: int) -> int:
    """Cells per stage for ``layers`` (all 3 stages' cells); at least 1."""
    return max(1, int(layers) // 3)


def _rebuild_network(payload: Mapping[str, Any], source: str) -> nn.Module:
    from robustnas.space.nb201.network import NB201Network

    args = dict(payload["arch"])
    genotype = nb201_genotype_from_dict(args.pop("genotype"), source)
    return NB201Network(genotype, **args)


def _rebuild_supernet(payload: Mapping[str, Any], source: str) -> nn.Module:
    from robustnas.space.nb201.supernet import NB201SuperNet

    return NB201SuperNet(**dict(payload["arch"]))


class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell space (6 edges, 5 operations, 15,625 cells)."""

    name = "nb201"
    genotype_format = NB201_GENOTYPE_FORMAT
    capabilities = frozenset({SUPERNET, LIPSCHITZ_REGULARIZER, LIPSCHITZ_BOUND})
    network_sizes = (16, 15)  # NAS-Bench-201: 16 stem channels, 3 stages of N = 5 cells
    layers_meaning = "cells of all 3 stages (NAS-Bench-201's N = 5 is 15)"
    size = NUM_CELLS
    benches = ("robustness", "nas-robbench-201")

    def recognises(self, text: str) -> bool:  # noqa: D102
        return text.strip().startswith("|")

    def load(self, spec: Any) -> NB201Genotype:  # noqa: D102
        return load_nb201_genotype(spec)

    def from_dict(self, data: Any, source: str = "genotype") -> NB201Genotype:  # noqa: D102
        return nb201_genotype_from_dict(data, source)

    def describe(self, genotype: Any) -> str:  # noqa: D102
        return genotype.to_string()

    def network(self, genotype: Any, *, C: int, layers: int, num_classes: int,
                in_channels: int, mean: Sequence[float] | None, std: Sequence[float] | None,
                auxiliary: bool = False) -> nn.Module:  # noqa: D102
        from robustnas.space.nb201.network import NB201Network

        return NB201Network(genotype, C=C, N=cells_per_stage(layers), num_classes=num_classes,
                            in_channels=in_channels, mean=mean, std=std)

    def supernet(self, *, C: int, layers: int, num_classes: int, in_channels: int,
                 mean: Sequence[float] | None, std: Sequence[float] | None,
                 steps: int = 4, relaxation: Any = None) -> nn.Module:  # noqa: D102
        from robustnas.space.nb201.supernet import NB201SuperNet

        return NB201SuperNet(C=C, N=cells_per_stage(layers), num_classes=num_classes,
                             in_channels=in_channels, mean=mean, std=std,
                             relaxation=relaxation)

    def model_kinds(self) -> Sequence[ModelKind]:  # noqa: D102
        return (ModelKind("nb201-network", _rebuild_network,
                          genotype=lambda p, source: nb201_genotype_from_dict(
                              p["arch"]["genotype"], source)),
                ModelKind("nb201-supernet", _rebuild_supernet))

    def info(self, genotype: Any, *, C: int, layers: int, classes: int, in_channels: int,
             image_size: int) -> dict[str, Any]:
        """Parameters and MACs, with N (cells per stage) as NAS-Bench-201 counts it."""
        info = super().info(genotype, C=C, layers=layers, classes=classes,
                            in_channels=in_channels, image_size=image_size)
        n = cells_per_stage(layers)
        return {**info, "cells_per_stage": n, "network": f"NAS-Bench-201, C={C} N={n}"}

    def draw(self, rng: random.Random, provenance: dict[str, Any]) -> NB201Genotype:
        """Each of the 6 edges takes one of the 5 operations uniformly."""
        return NB201Genotype(tuple(rng.choice(NB201_OPS) for _ in EDGES), provenance)

    def suggest(self, trial: Any, provenance: dict[str, Any] | None = None) -> NB201Genotype:
        """``edge_<src>_<dst>`` for each of the six edges, one of the five operations
        (``none`` included, as in that space)."""
        ops = tuple(trial.suggest_categorical(f"edge_{src}_{dst}", list(NB201_OPS))
                    for src, dst in EDGES)
        return NB201Genotype(ops, dict(provenance or {}))

    def draw_pictures(self, genotype: Any, out_dir: Path, prefix: str) -> list[Path]:  # noqa: D102
        from robustnas.io import ensure_writable_dir
        from robustnas.space.nb201.picture import draw_nb201_cell

        out = ensure_writable_dir(out_dir)
        return draw_nb201_cell(genotype, out / f"{prefix}cell", title="NAS-Bench-201 cell")

    def images(self, model: nn.Module, genotype: Any) -> dict[str, np.ndarray]:  # noqa: D102
        from robustnas.space.nb201.picture import nb201_cell_image
        from robustnas.viz import alpha_heatmap

        probs = model.alpha_softmax()["cell"]  # type: ignore[operator]
        primitives: Sequence[str] = model.primitives  # type: ignore[assignment]
        # Every edge is kept in NAS-Bench-201, with its argmax operation (none included).
        kept = [(k, list(primitives).index(op)) for k, op in enumerate(genotype.ops)]
        return {"alpha/cell": alpha_heatmap(probs, primitives, "softmax(α)", kept=kept),
                "cell/cell": nb201_cell_image(genotype)}

    def lipschitz_adapter(self, model: nn.Module, options: dict[str, Any]) -> Any:  # noqa: D102
        from robustnas.space.nb201.lipschitz_reg import NB201LipschitzAdapter

        return NB201LipschitzAdapter(model, options)

    def lipschitz_bound(self, model: nn.Module,
                        bound: Callable[[nn.Module], float]) -> float:
        """The model's own bound (``robustnas/space/nb201/lipschitz.py``)."""
        return float(model.lipschitz_bound(bound))  # type: ignore[operator]


NB201 = register_space(NB201Space())
