"""An Optuna sampler as an architecture source: the DARTS cell as Optuna parameters.

For each cell (``normal``, ``reduce``) and intermediate node ``j`` (0..3) a trial suggests
``<cell>_n<j>_inputs``, one of the ``C(j + 2, 2)`` unordered pairs of distinct predecessors
(written ``"a,b"`` with ``a < b``), and ``<cell>_n<j>_op0`` / ``_op1``, the operations on the
edges from ``a`` and from ``b`` (7 choices each, ``none`` excluded). Random sampling over
these parameters is uniform over the DARTS space. The study's objectives are clean and
robust accuracy (both maximised), so TPE and NSGA-II search the trade-off directly.

With ``space: nb201`` a trial suggests ``edge_<src>_<dst>`` for each of the six edges of the
NAS-Bench-201 cell, one of its five operations (``none`` included, as in that space); random
sampling is then uniform over its 15,625 cells.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import optuna

from robustnas.errors import UsageError
from robustnas.space.genotype import Genotype, make_genotype
from robustnas.space.ops import PRIMITIVES

OPS = tuple(op for op in PRIMITIVES if op != "none")
STEPS = 4


def input_pairs(node: int) -> list[str]:
    """The unordered input pairs of intermediate node ``node`` as ``"a,b"`` strings."""
    return [f"{a},{b}" for a, b in itertools.combinations(range(node + 2), 2)]


def suggest_genotype(trial: optuna.Trial, provenance: dict[str, Any] | None = None) -> Genotype:
    """Suggest one DARTS genotype through ``trial`` (parameters as in the module docstring)."""
    cells = {}
    for cell in ("normal", "reduce"):
        edges = []
        for node in range(STEPS):
            pair = trial.suggest_categorical(f"{cell}_n{node}_inputs", input_pairs(node))
            a, b = (int(v) for v in pair.split(","))
            edges.append((trial.suggest_categorical(f"{cell}_n{node}_op0", OPS), a))
            edges.append((trial.suggest_categorical(f"{cell}_n{node}_op1", OPS), b))
        cells[cell] = edges
    return make_genotype(cells["normal"], cells["reduce"], provenance=provenance)


def suggest_nb201_genotype(trial: optuna.Trial,
                           provenance: dict[str, Any] | None = None) -> Any:
    """Suggest one NAS-Bench-201 cell through ``trial`` (one categorical per edge)."""
    from robustnas.space.nb201.genotype import EDGES, NB201Genotype
    from robustnas.space.nb201.ops import NB201_OPS

    ops = tuple(trial.suggest_categorical(f"edge_{src}_{dst}", list(NB201_OPS))
                for src, dst in EDGES)
    return NB201Genotype(ops, dict(provenance or {}))


SUGGESTERS = {"darts": suggest_genotype, "nb201": suggest_nb201_genotype}


def suggest_architecture(space: str, trial: optuna.Trial,
                         provenance: dict[str, Any] | None = None) -> Any:
    """Suggest a genotype of ``space`` (``darts`` or ``nb201``) through ``trial``."""
    if space not in SUGGESTERS:
        raise UsageError(f"study: the sampler source has no parameterisation of space "
                         f"{space!r} (choose from: {', '.join(SUGGESTERS)})")
    return SUGGESTERS[space](trial, provenance)


def make_sampler(kind: str, seed: int | None, *, population: int | None = None,
                 startup: int | None = None) -> optuna.samplers.BaseSampler:
    """Optuna sampler ``kind`` (``random``, ``tpe`` or ``nsga2``) seeded with ``seed``."""
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        with warnings.catch_warnings():  # multivariate/group are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup or 10,
                                              multivariate=True, group=True)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population or 20)
    raise UsageError(f"unknown sampler {kind!r} (choose from: random, tpe, nsga2)")
