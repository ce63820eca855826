"""``predictor``: a table search guided by a random forest (``table search --methods
predictor``, also spelt ``--algorithm predictor``).

Predictor-based NAS in its plainest form (as in the "predictor" baselines of NAS-Bench-201
studies and of Lukasik et al.'s random forest, here fitted online): the first
``initial`` queries are uniform cells; then, in rounds, a random forest of ``trees``
trees (scikit-learn's ``RandomForestRegressor``, as :mod:`robustnas.tables.predictor`)
is fitted on every cell queried so far (features: the space's choices one-hot, e.g. the
six edge operations of a NAS-Bench-201 cell; target: the tabulated objective), ``pool``
fresh uniform cells not yet queried are scored, and the ``batch`` the forest ranks best
are queried. Cells whose table entry is missing (a partial table) count as queries but
do not train the forest. Everything is seeded by the run's seed, so a run repeats
exactly.

The features are the architecture's choices, not zero-cost proxies: proxies would have to
be measured for every candidate of the pool (a network built and run per cell); how well
proxies predict the table is measured separately by ``correlate --predictor rf``.

scikit-learn is the optional extra ``predictor``; without it this refuses in one line.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from robustnas.tables.nas import STRATEGIES, TableObjective, best_so_far
from robustnas.tables.predictor import _sklearn

INITIAL = 10
POOL = 500
BATCH = 5


class _ChoiceRecorder:
    """An Optuna-like trial that draws each categorical choice uniformly and records it,
    so that the space's own ``suggest`` both makes a cell and says its choices."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.choices: list[tuple[str, tuple[Any, ...], Any]] = []

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self.rng.choice(list(choices))
        self.choices.append((name, tuple(choices), value))
        return value


def _draw(objective: TableObjective, rng: random.Random) -> tuple[Any, list[float]]:
    """A uniform cell and its one-hot features."""
    trial = _ChoiceRecorder(rng)
    cell = objective.space.suggest(trial)
    features = [1.0 if value == choice else 0.0
                for _, choices, value in trial.choices for choice in choices]
    return cell, features


@STRATEGIES.register("predictor")
def predictor_search(objective: TableObjective, budget: int, seed: int,
                     initial: int = INITIAL, pool: int = POOL, batch: int = BATCH,
                     trees: int = 100) -> list[float]:
    """Best value after each of ``budget`` queries (see the module docstring)."""
    sk = _sklearn()
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[list[float]] = []
    targets: list[float] = []
    history: list[float] = []

    def query(cell: Any, features: list[float]) -> None:
        seen.add(objective.representative(cell))
        value = objective(cell)
        history.append(value)
        if np.isfinite(value):
            rows.append(features)
            targets.append(value)

    while len(history) < min(initial, budget):
        query(*_draw(objective, rng))
    rounds = 0
    while len(history) < budget:
        fresh: dict[str, tuple[Any, list[float]]] = {}
        for _ in range(pool):
            cell, features = _draw(objective, rng)
            rep = objective.representative(cell)
            if rep not in seen:
                fresh.setdefault(rep, (cell, features))
        if len(targets) < 2 or not fresh:  # nothing to learn from, or nothing new drawn
            query(*_draw(objective, rng))
            continue
        forest = sk.ensemble.RandomForestRegressor(n_estimators=trees, n_jobs=1,
                                                   random_state=seed * 100_003 + rounds)
        forest.fit(np.asarray(rows), np.asarray(targets))
        rounds += 1
        candidates = list(fresh.values())
        scores = forest.predict(np.asarray([features for _, features in candidates]))
        # stable order: ties keep the draw order, so a run repeats exactly
        for index in np.argsort(-scores, kind="stable")[:batch]:
            if len(history) < budget:
                query(*candidates[int(index)])
    return best_so_far(history)
