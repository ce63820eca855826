"""``table search --algorithm predictor``: a random forest picks the cells to query."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robustnas.cli import main
from robustnas.space.nb201.sampler import NUM_CELLS, cell_from_code
from robustnas.tables import RobustnessBench
from robustnas.tables.nas import STRATEGIES, TableObjective

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def bench_root(tmp_path_factory):
    """Every NAS-Bench-201 cell its own row; accuracy an additive function of the edge
    operations plus noise, so that the cells' choices predict it; 5 % of cells missing."""
    root = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    ops = sorted({op for c in range(0, NUM_CELLS, 7) for op in cell_from_code(c).ops})
    score = {(e, op): float(rng.uniform(0, 0.1)) for e in range(6) for op in ops}
    meta, clean, pgd = {"ids": {}, "epsilons": {"pgd@Linf": [1.0]}}, {}, {}
    for c in range(NUM_CELLS):
        cell = cell_from_code(c)
        meta["ids"][str(c)] = {"nb201-string": cell.to_string(), "isomorph": str(c)}
        if rng.uniform() < 0.05:
            continue
        value = 0.2 + sum(score[e, op] for e, op in enumerate(cell.ops))
        clean[str(c)] = value + 0.1
        pgd[str(c)] = [value + float(rng.normal(0, 0.005))]
    (root / "cifar10").mkdir()
    (root / "meta.json").write_text(json.dumps(meta))
    (root / "cifar10" / "clean_accuracy.json").write_text(
        json.dumps({"cifar10": {"clean": {"accuracy": clean}}}))
    (root / "cifar10" / "pgd@Linf_accuracy.json").write_text(
        json.dumps({"cifar10": {"pgd@Linf": {"accuracy": pgd}}}))
    return root


@pytest.fixture(scope="module")
def objective(bench_root):
    return TableObjective(RobustnessBench(bench_root), "cifar10", "pgd@Linf", 1.0)


def test_the_forest_finds_better_cells_than_random_search(objective):
    finals = {}
    for method in ("random", "predictor"):
        runs = []
        for seed in range(3):
            objective.reset()
            curve = STRATEGIES.get(method)(objective, 40, seed)
            assert len(curve) == 40 and objective.queries == 40
            assert all(b >= a for a, b in zip(curve, curve[1:]))
            runs.append(curve[-1])
        finals[method] = runs
    # random search's 40 queries reach about the top 2.5 % of 15,625 cells; the forest,
    # learning the additive structure, lands near the best
    assert min(finals["predictor"]) > max(finals["random"])
    assert np.mean(finals["predictor"]) > objective.best_possible - 0.06


class _Recording(TableObjective):
    """Records the table row of every query."""

    def __call__(self, cell):
        self.log.append(self.representative(cell))
        return super().__call__(cell)


def test_the_predictor_repeats_exactly_and_never_queries_a_cell_twice(objective):
    objective.reset()
    first = STRATEGIES.get("predictor")(objective, 25, 7)
    recording = _Recording(objective.bench, "cifar10", "pgd@Linf", 1.0)
    recording.log = []
    assert STRATEGIES.get("predictor")(recording, 25, 7) == first
    assert len(recording.log) == len(set(recording.log)) == 25


def test_cli_algorithm_predictor(bench_root, tmp_path, capsys):
    out = tmp_path / "ts"
    assert main(["table", "search", "--bench-root", str(bench_root), "--budget", "15",
                 "--seeds", "2", "--algorithm", "predictor,random", "--out", str(out)]) == 0
    assert "predictor" in capsys.readouterr().out
    data = json.loads((out / "curves.json").read_text())
    assert set(data["curves"]) == {"predictor", "random"}
