"""NAS on the table (seed 003, use case ii): black-box search with tabulated accuracy as the
objective, and best-found-vs-queries curves averaged over seeds.

Strategies (each call of the objective is one query; repeats count, as in NAS benchmarks):

* ``random``: uniform cells (:mod:`robustnas.space.nb201.sampler`).
* ``evolution``: regularised evolution (Real et al. 2019): a population of ``population``
  cells; each step samples ``sample_size`` members, mutates the best (one edge gets a
  different operation) and replaces the oldest member.
* ``tpe``: Optuna's TPE sampler on the six categorical edges.
* ``nsga2``: Optuna's NSGA-II on two objectives, clean and robust accuracy; the curve tracks
  the best robust accuracy found.
"""

from __future__ import annotations

import collections
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustnas.errors import UsageError
from robustnas.registry import Registry
from robustnas.space.nb201.genotype import EDGES, NB201Genotype
from robustnas.space.nb201.ops import NB201_OPS
from robustnas.tables.base import TableBench


@dataclass
class TableObjective:
    """Tabulated ``key`` (at ``level``) of a cell, plus clean accuracy for two objectives.

    ``queries`` counts calls; ``best_possible`` is the best value over all evaluated cells.
    """

    bench: TableBench
    dataset: str
    key: str
    level: float | None = None
    clean_key: str | None = None

    def __post_init__(self) -> None:
        ids, values = self.bench.column(self.dataset, self.key, self.level)
        self._values = dict(zip(ids, values.tolist()))
        self.clean_key = self.clean_key or self.bench.clean_key(self.dataset)
        cids, cvalues = self.bench.column(self.dataset, self.clean_key)
        self._clean = dict(zip(cids, cvalues.tolist()))
        self._rep: dict[NB201Genotype, str] = {}
        self.queries = 0
        self.best_possible = float(np.nanmax(values))
        # A partial table (a download that stopped, a subset of cells) scores the missing
        # cells -inf; the search must say so rather than look like a full benchmark.
        self.coverage = (int(np.isfinite(values).sum()), len(self.bench.meta.representatives))

    def _rep_of(self, cell: NB201Genotype) -> str:
        if cell not in self._rep:
            self._rep[cell] = self.bench.meta.resolve(cell)[1]
        return self._rep[cell]

    def __call__(self, cell: NB201Genotype) -> float:
        self.queries += 1
        value = self._values.get(self._rep_of(cell), float("nan"))
        return value if np.isfinite(value) else float("-inf")

    def clean(self, cell: NB201Genotype) -> float:
        """Clean accuracy (not counted as a query: it comes with the same table row)."""
        value = self._clean.get(self._rep_of(cell), float("nan"))
        return value if np.isfinite(value) else float("-inf")


Strategy = Callable[[TableObjective, int, int], list[float]]
STRATEGIES: Registry[Strategy] = Registry("table search strategy")


def _random_cell(rng: random.Random) -> NB201Genotype:
    return NB201Genotype(tuple(rng.choice(NB201_OPS) for _ in EDGES))


def _best_so_far(values: Sequence[float]) -> list[float]:
    return [float(v) for v in np.maximum.accumulate(np.asarray(values, dtype=np.float64))]


@STRATEGIES.register("random")
def random_search(objective: TableObjective, budget: int, seed: int) -> list[float]:
    """Best value after each of ``budget`` uniform queries."""
    rng = random.Random(seed)
    return _best_so_far([objective(_random_cell(rng)) for _ in range(budget)])


def mutate(cell: NB201Genotype, rng: random.Random) -> NB201Genotype:
    """``cell`` with one uniformly chosen edge set to a different operation."""
    k = rng.randrange(len(EDGES))
    ops = list(cell.ops)
    ops[k] = rng.choice([o for o in NB201_OPS if o != ops[k]])
    return NB201Genotype(tuple(ops))


@STRATEGIES.register("evolution")
def regularized_evolution(objective: TableObjective, budget: int, seed: int,
                          population: int = 20, sample_size: int = 5) -> list[float]:
    """Regularised (ageing) evolution; the first ``population`` queries are random."""
    rng = random.Random(seed)
    pop: collections.deque[tuple[NB201Genotype, float]] = collections.deque()
    history = []
    while len(history) < budget:
        if len(pop) < population:
            cell = _random_cell(rng)
        else:
            parent = max(rng.sample(list(pop), min(sample_size, len(pop))), key=lambda m: m[1])
            cell = mutate(parent[0], rng)
        value = objective(cell)
        pop.append((cell, value))
        if len(pop) > population:
            pop.popleft()
        history.append(value)
    return _best_so_far(history)


def _optuna_search(objective: TableObjective, budget: int, seed: int, multi: bool) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if multi:
        sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=min(20, budget))
        study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
    else:
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed))
    history: list[float] = []

    def trial_fn(trial: Any) -> Any:
        cell = NB201Genotype(tuple(trial.suggest_categorical(f"edge{k}", list(NB201_OPS))
                                   for k in range(len(EDGES))))
        value = objective(cell)
        history.append(value)
        return (objective.clean(cell), value) if multi else value

    study.optimize(trial_fn, n_trials=budget)
    return _best_so_far(history)


@STRATEGIES.register("tpe")
def tpe_search(objective: TableObjective, budget: int, seed: int) -> list[float]:
    """Optuna TPE on the six edges."""
    return _optuna_search(objective, budget, seed, multi=False)


@STRATEGIES.register("nsga2")
def nsga2_search(objective: TableObjective, budget: int, seed: int) -> list[float]:
    """Optuna NSGA-II on (clean, robust); the curve is the best robust value found."""
    return _optuna_search(objective, budget, seed, multi=True)


def _sample_sd(values: np.ndarray) -> float | None:
    """Sample standard deviation (n - 1), None for fewer than two values."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


@dataclass(frozen=True)
class Curves:
    """Best-found curves: ``curves[method]`` is (seeds × budget)."""

    curves: dict[str, np.ndarray]
    best_possible: float
    label: str
    coverage: tuple[int, int] | None = None
    """(cells with a finite value of the objective, evaluated cells in meta.json)."""

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Final best (mean and sample sd over seeds, as everywhere in robustnas; sd None for
        one seed) and the fraction of seeds that found the optimum, per method."""
        out: dict[str, dict[str, float | None]] = {}
        for name, c in self.curves.items():
            final = c[:, -1]
            out[name] = {"final_mean": float(final.mean()), "final_std": _sample_sd(final),
                         "found_optimum": float(np.mean(np.isclose(final, self.best_possible)))}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"label": self.label, "best_possible": self.best_possible,
                "summary": self.summary(),
                "table_cells": (None if self.coverage is None else
                                {"with_value": self.coverage[0],
                                 "evaluated": self.coverage[1]}),
                "curves": {k: v.tolist() for k, v in self.curves.items()}}


def run_table_search(bench: TableBench, dataset: str, key: str, level: float | None,
                     methods: Sequence[str] = ("random", "evolution", "tpe", "nsga2"),
                     budget: int = 100, seeds: int = 5) -> Curves:
    """Every method × ``seeds`` seeds with ``budget`` queries each."""
    if budget < 1 or seeds < 1:
        raise UsageError(f"budget and seeds must be positive, got {budget} and {seeds}")
    strategies = {m: STRATEGIES.get(m) for m in methods}
    objective = TableObjective(bench, dataset, key, level)
    curves = {}
    for name, strategy in strategies.items():
        rows = []
        for seed in range(seeds):
            objective.queries = 0
            rows.append(strategy(objective, budget, seed))
            assert objective.queries == budget
        curves[name] = np.asarray(rows, dtype=np.float64)
    label = f"{dataset} {key}" + (f" ε={level:g}/255" if level is not None else "")
    return Curves(curves, objective.best_possible, label, objective.coverage)


def plot_curves(curves: Curves, path: str | Path) -> Path:
    """PNG: mean best-found value vs queries, ±1 sample sd band, per method."""
    from robustnas.io import atomic_write_bytes
    from robustnas.viz._render import figure_bytes, new_figure

    fig = new_figure(5.5, 3.6)
    ax = fig.add_axes((0.13, 0.14, 0.82, 0.76))
    for name, c in curves.curves.items():
        finite = np.where(np.isfinite(c), c, np.nan)
        with warnings.catch_warnings():  # a query count before any seed found a cell: gap
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(finite, axis=0)  # sample sd band, none for one seed
            std = np.nanstd(finite, axis=0, ddof=1) if c.shape[0] > 1 else np.zeros_like(mean)
        x = np.arange(1, c.shape[1] + 1)
        ax.plot(x, mean, label=name, linewidth=1.4)
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    ax.axhline(curves.best_possible, color="#555555", linestyle="--", linewidth=0.8,
               label="best in table")
    ax.set_xlabel("queries")
    ax.set_ylabel("best found")
    ax.set_title(f"table search: {curves.label} (mean ± std over "
                 f"{next(iter(curves.curves.values())).shape[0]} seeds)", fontsize=8)
    ax.legend(fontsize=7)
    path = Path(path)
    atomic_write_bytes(path, figure_bytes(fig, "png"))
    return path
