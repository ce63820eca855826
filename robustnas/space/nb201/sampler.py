"""Enumerating the 5^6 = 15,625 NAS-Bench-201 cells (uniform samples:
:func:`robustnas.space.sampling.sample_genotypes` with ``space="nb201"``)."""

from __future__ import annotations

import itertools
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
