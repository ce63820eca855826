"""Registers the NAS-Bench-201 space with :mod:`robustnas.space.sampling` (``--space nb201``):
each of the 6 edges takes one of the 5 operations uniformly, so every one of the 15,625
cells is equally likely."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from robustnas.space.nb201.genotype import EDGES, NB201Genotype, save_nb201_genotype
from robustnas.space.nb201.ops import NB201_OPS
from robustnas.space.nb201.sampler import NUM_CELLS
from robustnas.space.sampling import SAMPLERS, SpaceSampler


def _draw(rng: random.Random, provenance: dict[str, Any]) -> NB201Genotype:
    return NB201Genotype(tuple(rng.choice(NB201_OPS) for _ in EDGES), provenance)


def _save(genotype: NB201Genotype, path: Path) -> Path:
    return save_nb201_genotype(genotype, path)


if "nb201" not in SAMPLERS:
    SAMPLERS.add("nb201", SpaceSampler(name="uniform-nb201", draw=_draw, size=NUM_CELLS,
                                       save=_save))
