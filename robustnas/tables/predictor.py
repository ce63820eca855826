"""How well all proxies together predict tabulated robustness: a random-forest regressor.

As Lukasik et al. ("An Evaluation of Zero-Cost Proxies — from Neural Architecture
Performance Prediction to Model Robustness", GCPR 2023 / IJCV) report it: for every
tabulated column (``clean``, each attack at each ε), a random forest of 100 trees
(scikit-learn's ``RandomForestRegressor``) is fitted on a random 80 % of the cells, with
the proxies as features, and scored by R² on the other 20 %; this is repeated over split
seeds (the forest is seeded with the same seed) and reported as mean ± sample sd, with the
forests' impurity-based feature importances averaged over the seeds. Cells are matched to
the benchmark as in :mod:`robustnas.tables.correlate`; cells with a non-finite proxy (e.g.
``lipschitz_log10`` = −inf) are left out, since the forest takes only finite features.

The authors' script (``zcp_eval``'s ``random_forest.py``) fits one split (``random_state``
42 for the split and the forest) and reports its test R² and the mean-decrease-in-impurity
importances; the mean ± sd over several split seeds is ours, so that one lucky split does
not decide the comparison.

scikit-learn is the optional extra ``predictor``; without it this refuses in one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustnas.errors import UsageError
from robustnas.tables.base import TableBench

TREES = 100
TEST_FRACTION = 0.2
MIN_CELLS = 10
"""Fewer cells leave a test split of one or two cells, whose R² means nothing."""


@dataclass(frozen=True)
class ForestScore:
    """The random forest's R² over split seeds for one tabulated column."""

    column: str
    n: int
    r2_mean: float
    r2_sd: float
    r2: tuple[float, ...]
    importances: dict[str, float] = field(default_factory=dict)


def _sklearn() -> Any:
    try:
        import sklearn.ensemble
        import sklearn.metrics
        import sklearn.model_selection
    except ImportError:
        raise UsageError("--predictor rf needs scikit-learn: pip install "
                         "'robustnas[predictor]' (or pip install scikit-learn)") from None
    return sklearn


def forest_scores(features: np.ndarray, target: np.ndarray, names: Sequence[str],
                  seeds: Sequence[int] = range(5), trees: int = TREES,
                  test_fraction: float = TEST_FRACTION) -> tuple[list[float], dict[str, float]]:
    """R² on the test split for each seed, and the mean feature importance per name."""
    sk = _sklearn()
    r2s, imps = [], []
    for seed in seeds:
        x_tr, x_te, y_tr, y_te = sk.model_selection.train_test_split(
            features, target, test_size=test_fraction, random_state=seed)
        forest = sk.ensemble.RandomForestRegressor(n_estimators=trees, random_state=seed,
                                                   n_jobs=1)
        forest.fit(x_tr, y_tr)
        r2s.append(float(sk.metrics.r2_score(y_te, forest.predict(x_te))))
        imps.append(forest.feature_importances_)
    mean_imp = np.mean(imps, axis=0)
    return r2s, {name: float(v) for name, v in zip(names, mean_imp)}


def predict_robustness(records: dict[str, dict[str, Any]], bench: TableBench,
                       dataset: str, proxies: Sequence[str],
                       keys: Sequence[str] | None = None, seeds: Sequence[int] = range(5),
                       trees: int = TREES) -> list[ForestScore]:
    """A :class:`ForestScore` per tabulated column, the proxies as features."""
    from robustnas.tables.correlate import matched_cells, table_columns

    _sklearn()  # refuse before reading the table
    if len(seeds) < 2:
        raise UsageError("the predictor needs at least 2 split seeds for an sd")
    reps = matched_cells(records, bench)
    results = []
    for column, (ids, values) in table_columns(bench, dataset, keys).items():
        rows, target = [], []
        for i, v in zip(ids, values):
            if i not in reps or not math.isfinite(float(v)):
                continue
            feats = [float(records[reps[i]].get(p, math.nan)) for p in proxies]
            if all(math.isfinite(f) for f in feats):
                rows.append(feats)
                target.append(float(v))
        if len(rows) < MIN_CELLS:
            raise UsageError(f"{column}: only {len(rows)} cells have every proxy and a "
                             f"tabulated value; the predictor needs at least {MIN_CELLS}")
        r2s, imps = forest_scores(np.asarray(rows), np.asarray(target), proxies, seeds, trees)
        results.append(ForestScore(column, len(rows), float(np.mean(r2s)),
                                   float(np.std(r2s, ddof=1)), tuple(r2s), imps))
    return results


def format_forest(results: Sequence[ForestScore]) -> str:
    """A text table: one row per column, R² mean ± sd and the importances per proxy."""
    proxies = list(results[0].importances) if results else []
    head = ["column", "n", "R² mean ± sd", *[f"imp {p}" for p in proxies]]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in results:
        lines.append(" | ".join([r.column, str(r.n), f"{r.r2_mean:+.3f} ± {r.r2_sd:.3f}",
                                 *[f"{r.importances[p]:.3f}" for p in proxies]]))
    return "\n".join(lines)
