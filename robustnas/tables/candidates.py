"""What a black-box search on a table draws, mutates and suggests, per benchmark space.

A tabular benchmark names the space of its architectures (``TableBench.space``): ``nb201``
cells for the robustness dataset and NAS-RobBench-201, ``nares`` WideResNets for NARes. The
strategies of :mod:`robustnas.tables.nas` only call the :class:`CandidateSpace` of that
space, so they run on every benchmark unchanged. The NAS-Bench-201 candidates keep the
random calls and Optuna parameter names (``edge0`` .. ``edge5``) the table search always
used, so seeded searches on those benchmarks give the same curves as before.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from robustnas.registry import Registry
from robustnas.space.nares import sampler as nares_sampler
from robustnas.space.nares.genotype import NAResGenotype, load_nares_genotype
from robustnas.space.nb201.genotype import (  # not .ops: reading tables needs no PyTorch
    EDGES,
    NB201_OPS,
    NB201Genotype,
    load_nb201_genotype,
)


@dataclass(frozen=True)
class CandidateSpace:
    """The four operations a table search needs on one space's architectures.

    ``load(spec)`` reads an architecture (a string form or a genotype JSON file),
    ``draw(rng)`` draws one uniformly, ``mutate(arch, rng)`` changes one choice and
    ``suggest(trial)`` asks an Optuna trial for one.
    """

    name: str
    load: Callable[[Any], Any]
    draw: Callable[[random.Random], Any]
    mutate: Callable[[Any, random.Random], Any]
    suggest: Callable[[Any], Any]


CANDIDATES: Registry[CandidateSpace] = Registry("table search space")


def nb201_draw(rng: random.Random) -> NB201Genotype:
    """A uniform NAS-Bench-201 cell (one operation per edge)."""
    return NB201Genotype(tuple(rng.choice(NB201_OPS) for _ in EDGES))


def nb201_mutate(cell: NB201Genotype, rng: random.Random) -> NB201Genotype:
    """``cell`` with one uniformly chosen edge set to a different operation."""
    k = rng.randrange(len(EDGES))
    ops = list(cell.ops)
    ops[k] = rng.choice([o for o in NB201_OPS if o != ops[k]])
    return NB201Genotype(tuple(ops))


def nb201_suggest(trial: Any) -> NB201Genotype:
    """A cell from six categorical parameters ``edge0`` .. ``edge5``."""
    return NB201Genotype(tuple(trial.suggest_categorical(f"edge{k}", list(NB201_OPS))
                               for k in range(len(EDGES))))


def nares_load(spec: Any) -> NAResGenotype:
    """A NARes benchmark architecture (strict: the table holds only those)."""
    return load_nares_genotype(spec, strict=True)


CANDIDATES.add("nb201", CandidateSpace("nb201", load_nb201_genotype, nb201_draw, nb201_mutate,
                                       nb201_suggest))
CANDIDATES.add("nares", CandidateSpace("nares", nares_load, nares_sampler.draw,
                                       nares_sampler.mutate, nares_sampler.suggest))


def candidates(space: str) -> CandidateSpace:
    """The candidate space of benchmark space ``space`` (UsageError listing the choices)."""
    return CANDIDATES.get(space)
