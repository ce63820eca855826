"""Sampling NARes architectures: uniform draws, Optuna suggestions, one-coordinate mutation.

Each of the six coordinates D1, W1, D2, W2, D3, W3 is drawn independently and uniformly
from the benchmark's choices, so each of the 15,625 architectures has probability 1/15,625
(the authors' ``sample_arch`` does the same). Draws are made in string order, so a sequence
of draws from one seeded ``random.Random`` is reproducible.
"""

from __future__ import annotations

import random
from typing import Any

from robustnas.space.nares.genotype import (
    AUTHORS_KEYS,
    DEPTHS,
    NUM_ARCHS,
    WIDTHS,
    NAResGenotype,
)

__all__ = ["NUM_ARCHS", "choices", "draw", "mutate", "neighbours", "sample_genotypes",
           "suggest"]


def choices(coordinate: int) -> tuple[int, ...]:
    """The choices of coordinate ``coordinate`` (0..5, string order): depths or widths."""
    return DEPTHS if coordinate % 2 == 0 else WIDTHS


def _from_coordinates(values: list[int], provenance: dict[str, Any] | None) -> NAResGenotype:
    return NAResGenotype(tuple(values[0::2]), tuple(values[1::2]),  # type: ignore[arg-type]
                         dict(provenance or {}))


def draw(rng: random.Random, provenance: dict[str, Any] | None = None) -> NAResGenotype:
    """One architecture, each coordinate uniform over its five choices."""
    return _from_coordinates([rng.choice(choices(k)) for k in range(len(AUTHORS_KEYS))],
                             provenance)


def sample_genotypes(n: int, seed: int | None = None) -> list[NAResGenotype]:
    """``n`` uniform draws (with replacement), reproducible by ``seed``."""
    rng = random.Random(seed)
    return [draw(rng) for _ in range(n)]


def suggest(trial: Any, provenance: dict[str, Any] | None = None) -> NAResGenotype:
    """One architecture through an Optuna trial: categorical parameters ``D1``, ``W1``, ...,
    ``W3`` (the authors' names) over the benchmark's choices."""
    return _from_coordinates([trial.suggest_categorical(name, list(choices(k)))
                              for k, name in enumerate(AUTHORS_KEYS)], provenance)


def mutate(genotype: NAResGenotype, rng: random.Random) -> NAResGenotype:
    """``genotype`` with one uniformly chosen coordinate set to a different choice (the
    authors' ``get_random_neighbor``); provenance is not carried over."""
    values = list(genotype.coordinates())
    k = rng.randrange(len(values))
    values[k] = rng.choice([c for c in choices(k) if c != values[k]])
    return _from_coordinates(values, None)


def neighbours(genotype: NAResGenotype) -> list[NAResGenotype]:
    """Every architecture that differs from ``genotype`` in exactly one coordinate (24)."""
    out = []
    values = list(genotype.coordinates())
    for k, current in enumerate(values):
        for c in choices(k):
            if c != current:
                out.append(_from_coordinates(values[:k] + [c] + values[k + 1:], None))
    return out
