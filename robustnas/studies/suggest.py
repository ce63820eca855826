"""An Optuna sampler as an architecture source: a space's genotype as Optuna parameters.

Each space defines its parameterisation (``SearchSpace.suggest``; DARTS:
:mod:`robustnas.space.darts.suggest`, NAS-Bench-201: one categorical per edge), chosen so
that random sampling over the parameters is uniform over the space. The study's objectives
are clean and robust accuracy (both maximised), so TPE and NSGA-II search the trade-off
directly.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from robustnas.errors import UsageError
from robustnas.space.spaces import get_space


def suggest_architecture(space: str, trial: optuna.Trial,
                         provenance: dict[str, Any] | None = None) -> Any:
    """Suggest a genotype of ``space`` through ``trial`` (UsageError for an unknown space)."""
    return get_space(space).suggest(trial, provenance)


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
