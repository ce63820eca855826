"""NAS on the table (use case (ii) of Jung et al., "Neural Architecture Design and Robustness:
A Dataset", ICLR 2023): black-box search with tabulated accuracy as the objective, and
best-found-vs-queries curves averaged over seeds.

Strategies (each call of the objective is one query; repeats count, as in NAS benchmarks):

* ``random``: uniform architectures.
* ``evolution``: regularised evolution (Real et al. 2019): a population of ``population``
  architectures; each step samples ``sample_size`` members, mutates the best (one choice
  changes: an edge's operation in NAS-Bench-201, a depth or width in NARes) and replaces the
  oldest member.
* ``tpe``: Optuna's TPE sampler on the space's categorical choices.
* ``nsga2``: Optuna's NSGA-II on two objectives, clean and robust accuracy; the curve tracks
  the best robust accuracy found.
* ``predictor``: a random forest fitted on the cells queried so far picks the next ones
  (:mod:`robustnas.tables.predictor_search`; needs scikit-learn, the ``predictor`` extra).

The architectures are the benchmark's space's (:mod:`robustnas.tables.candidates`). Each run
also records the best architecture it found, so that the benchmark's other numbers of it
(test accuracies, for a validation objective) are reported next to the curves.
"""

from __future__ import annotations

import collections
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robustnas.errors import UsageError
from robustnas.registry import Registry
from robustnas.tables.base import TableBench
from robustnas.tables.candidates import CandidateSpace, candidates, nb201_draw, nb201_mutate


@dataclass
class TableObjective:
    """Tabulated ``key`` (at ``level``) of a cell, plus clean accuracy for two objectives.

    ``queries`` counts calls; ``best_possible`` is the best value over all evaluated cells;
    ``best`` is the representative id of the best cell queried since :meth:`reset` (None
    before any finite value); ``space`` draws, mutates and suggests the bench's cells.
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
        self._rep: dict[Any, str] = {}
        self.space: CandidateSpace = candidates(self.bench.space)
        self.queries = 0
        self.best: str | None = None
        self._best_value = float("-inf")
        self.best_possible = float(np.nanmax(values))
        # A partial table (a download that stopped, a subset of cells) scores the missing
        # cells -inf; the search must say so rather than look like a full benchmark.
        self.coverage = (int(np.isfinite(values).sum()), len(self.bench.meta.representatives))

    def reset(self) -> None:
        """Start a new run: no queries, no best cell."""
        self.queries = 0
        self.best = None
        self._best_value = float("-inf")

    def representative(self, cell: Any) -> str:
        """The id of the table row that holds ``cell`` (isomorphic cells share one);
        not a query."""
        if cell not in self._rep:
            self._rep[cell] = self.bench.meta.resolve(cell)[1]
        return self._rep[cell]

    _rep_of = representative

    def __call__(self, cell: Any) -> float:
        self.queries += 1
        rep = self._rep_of(cell)
        value = self._values.get(rep, float("nan"))
        if not np.isfinite(value):
            return float("-inf")
        if value > self._best_value:  # ties keep the first found, as the curve does
            self.best, self._best_value = rep, value
        return value

    def clean(self, cell: Any) -> float:
        """Clean accuracy (not counted as a query: it comes with the same table row)."""
        value = self._clean.get(self._rep_of(cell), float("nan"))
        return value if np.isfinite(value) else float("-inf")


Strategy = Callable[[TableObjective, int, int], list[float]]
#: ``random``, ``evolution``, ``tpe`` and ``nsga2`` are here; each further strategy is a
#: module of its own that registers here (``predictor``: robustnas/tables/predictor_search.py).
STRATEGIES: Registry[Strategy] = Registry("table search strategy",
                                          discover=("robustnas.tables.predictor_search",))


_random_cell = nb201_draw  # the names this module has always had for NAS-Bench-201
mutate = nb201_mutate


def best_so_far(values: Sequence[float]) -> list[float]:
    """The running maximum of a strategy's query values: its best-found curve."""
    return [float(v) for v in np.maximum.accumulate(np.asarray(values, dtype=np.float64))]


@STRATEGIES.register("random")
def random_search(objective: TableObjective, budget: int, seed: int) -> list[float]:
    """Best value after each of ``budget`` uniform queries."""
    rng = random.Random(seed)
    return best_so_far([objective(objective.space.draw(rng)) for _ in range(budget)])


@STRATEGIES.register("evolution")
def regularized_evolution(objective: TableObjective, budget: int, seed: int,
                          population: int = 20, sample_size: int = 5) -> list[float]:
    """Regularised (ageing) evolution; the first ``population`` queries are random."""
    rng = random.Random(seed)
    pop: collections.deque[tuple[Any, float]] = collections.deque()
    history = []
    while len(history) < budget:
        if len(pop) < population:
            cell = objective.space.draw(rng)
        else:
            parent = max(rng.sample(list(pop), min(sample_size, len(pop))), key=lambda m: m[1])
            cell = objective.space.mutate(parent[0], rng)
        value = objective(cell)
        pop.append((cell, value))
        if len(pop) > population:
            pop.popleft()
        history.append(value)
    return best_so_far(history)


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
        cell = objective.space.suggest(trial)
        value = objective(cell)
        history.append(value)
        return (objective.clean(cell), value) if multi else value

    study.optimize(trial_fn, n_trials=budget)
    return best_so_far(history)


@STRATEGIES.register("tpe")
def tpe_search(objective: TableObjective, budget: int, seed: int) -> list[float]:
    """Optuna TPE on the space's categorical choices."""
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
    found: dict[str, list[str | None]] = field(default_factory=dict)
    """Per method, the representative id of the best cell each seed found (None: none)."""
    found_values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    """Per method and reported column, the tabulated value of each seed's found cell."""

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Final best (mean and sample sd over seeds, as everywhere in robustnas; sd None for
        one seed) and the fraction of seeds that found the optimum, per method."""
        out: dict[str, dict[str, float | None]] = {}
        for name, c in self.curves.items():
            final = c[:, -1]
            out[name] = {"final_mean": float(final.mean()), "final_std": _sample_sd(final),
                         "found_optimum": float(np.mean(np.isclose(final, self.best_possible)))}
        return out

    def found_summary(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """Per method and column: mean and sample sd over seeds of the found cells' values
        (seeds whose cell has no value are left out; mean None when none has one)."""
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        for name, columns in self.found_values.items():
            out[name] = {}
            for column, values in columns.items():
                v = np.asarray(values, dtype=np.float64)
                v = v[np.isfinite(v)]
                out[name][column] = {"mean": float(v.mean()) if len(v) else None,
                                     "std": _sample_sd(v)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"label": self.label, "best_possible": self.best_possible,
                "summary": self.summary(),
                "table_cells": (None if self.coverage is None else
                                {"with_value": self.coverage[0],
                                 "evaluated": self.coverage[1]}),
                "curves": {k: v.tolist() for k, v in self.curves.items()},
                "found": self.found, "found_metrics": self.found_summary()}


def report_columns(bench: TableBench, dataset: str, key: str,
                   level: float | None) -> dict[str, dict[str, float]]:
    """``{column: {representative id: value}}`` reported for the cells a search finds: the
    objective, clean accuracy and every other single-valued default key (for NARes, the
    validation and test accuracies the authors report)."""
    label = f"{key}@{level:g}" if level is not None else key
    wanted: dict[str, tuple[str, float | None]] = {label: (key, level)}
    for k in [bench.clean_key(dataset), *bench.default_keys(dataset)]:
        if k not in wanted and bench.series(dataset, k).levels is None:
            wanted[k] = (k, None)
    out = {}
    for column, (k, lv) in wanted.items():
        ids, values = bench.column(dataset, k, lv)
        out[column] = dict(zip(ids, values.tolist()))
    return out


def run_table_search(bench: TableBench, dataset: str, key: str, level: float | None,
                     methods: Sequence[str] = ("random", "evolution", "tpe", "nsga2"),
                     budget: int = 100, seeds: int = 5) -> Curves:
    """Every method × ``seeds`` seeds with ``budget`` queries each."""
    if budget < 1 or seeds < 1:
        raise UsageError(f"budget and seeds must be positive, got {budget} and {seeds}")
    strategies = {m: STRATEGIES.get(m) for m in methods}
    objective = TableObjective(bench, dataset, key, level)
    columns = report_columns(bench, dataset, key, level)
    curves = {}
    found: dict[str, list[str | None]] = {}
    for name, strategy in strategies.items():
        rows = []
        found[name] = []
        for seed in range(seeds):
            objective.reset()
            rows.append(strategy(objective, budget, seed))
            assert objective.queries == budget
            found[name].append(objective.best)
        curves[name] = np.asarray(rows, dtype=np.float64)
    values = {name: {column: [table.get(rep, float("nan")) if rep is not None
                              else float("nan") for rep in reps]
                     for column, table in columns.items()}
              for name, reps in found.items()}
    label = f"{dataset} {key}" + (f" ε={level:g}/255" if level is not None else "")
    return Curves(curves, objective.best_possible, label, objective.coverage, found, values)


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
