"""Enumerating and uniformly sampling the 5^6 = 15,625 NAS-Bench-201 cells."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from robustnas.space.nb201.genotype import EDGES, NB201Genotype
from robustnas.space.nb201.ops import NB201_OPS

NUM_CELLS = len(NB201_OPS) ** len(EDGES)


def all_cells() -> Iterator[NB201Genotype]:
    """Every cell once, in :meth:`NB201Genotype.code` order."""
    for ops in itertools.product(NB201_OPS, repeat=len(EDGES)):
        yield NB201Genotype(tuple(ops))


def cell_from_code(code: int) -> NB201Genotype:
    """The cell whose :meth:`~NB201Genotype.code` is ``code`` (0 .. 15624)."""
    if not 0 <= int(code) < NUM_CELLS:
        from robustnas.errors import GenotypeError

        raise GenotypeError(f"cell code {code} out of range 0..{NUM_CELLS - 1}")
    digits = []
    value = int(code)
    for _ in EDGES:
        value, digit = divmod(value, len(NB201_OPS))
        digits.append(NB201_OPS[digit])
    return NB201Genotype(tuple(reversed(digits)))


def sample_cells(n: int, seed: int | None = None) -> list[NB201Genotype]:
    """``n`` cells drawn uniformly (with replacement) from all 15,625; reproducible by seed."""
    rng = random.Random(seed)
    return [NB201Genotype(tuple(rng.choice(NB201_OPS) for _ in EDGES)) for _ in range(n)]
