"""NAS on the table: strategies, curves averaged over seeds, plot, ranks, CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from robustnas.cli import main
from robustnas.space.nb201.sampler import NUM_CELLS, cell_from_code
from robustnas.tables import RobustnessBench
from robustnas.tables.lookup import rank_lines, search_lookup
from robustnas.tables.nas import (
    STRATEGIES,
    Curves,
    TableObjective,
    mutate,
    plot_curves,
    run_table_search,
)

EPS = [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0]


@pytest.fixture(scope="module")
def bench_root(tmp_path_factory):
    """Every one of the 15,625 cells listed, mapped onto 40 made-up representatives."""
    root = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    reps = sorted(int(c) for c in rng.choice(NUM_CELLS, size=40, replace=False))
    rep_of = {c: reps[c % len(reps)] for c in range(NUM_CELLS)}
    for r in reps:
        rep_of[r] = r
    meta = {"ids": {str(c): {"nb201-string": cell_from_code(c).to_string(),
                             "isomorph": str(rep_of[c])} for c in range(NUM_CELLS)},
            "epsilons": {"pgd@Linf": EPS}}
    clean = {str(r): float(v) for r, v in zip(reps, rng.uniform(0.5, 0.95, len(reps)))}
    pgd = {str(r): [clean[str(r)] * f for f in np.sort(rng.uniform(0, 1, 7))[::-1]]
           for r in reps}
    (root / "cifar10").mkdir()
    (root / "meta.json").write_text(json.dumps(meta))
    (root / "cifar10" / "clean_accuracy.json").write_text(
        json.dumps({"cifar10": {"clean": {"accuracy": clean}}}))
    (root / "cifar10" / "pgd@Linf_accuracy.json").write_text(
        json.dumps({"cifar10": {"pgd@Linf": {"accuracy": pgd}}}))
    return root


@pytest.fixture(scope="module")
def bench(bench_root):
    return RobustnessBench(bench_root)


@pytest.mark.parametrize("method", ["random", "evolution", "tpe", "nsga2"])
def test_strategies_spend_the_budget_and_improve_monotonically(bench, method):
    objective = TableObjective(bench, "cifar10", "pgd@Linf", 1.0)
    curve = STRATEGIES.get(method)(objective, 25, 0)
    assert len(curve) == 25 and objective.queries == 25
    assert all(b >= a for a, b in zip(curve, curve[1:]))
    _, column = bench.column("cifar10", "pgd@Linf", 1.0)
    assert curve[-1] in set(column.tolist()) and curve[-1] <= objective.best_possible
    objective.queries = 0
    assert STRATEGIES.get(method)(objective, 25, 0) == curve  # seeded


def test_mutation_changes_exactly_one_edge():
    rng = random.Random(0)
    for code in range(0, NUM_CELLS, 1301):
        cell = cell_from_code(code)
        child = mutate(cell, rng)
        assert sum(a != b for a, b in zip(cell.ops, child.ops)) == 1


def test_curves_summary_and_plot(bench, tmp_path):
    curves = run_table_search(bench, "cifar10", "pgd@Linf", 1.0, ["random", "evolution"],
                              budget=60, seeds=3)
    assert curves.curves["random"].shape == (3, 60)
    summary = curves.summary()
    assert 0 <= summary["evolution"]["found_optimum"] <= 1
    assert summary["random"]["final_mean"] <= curves.best_possible
    png = plot_curves(curves, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_curves_summary_uses_the_sample_sd(tmp_path):
    final = np.array([[0.1, 0.5], [0.1, 0.7], [0.2, 0.9]])
    curves = Curves({"m": final}, 0.9, "label")
    summary = curves.summary()["m"]
    assert summary["final_std"] == pytest.approx(0.2)  # sd over seeds with n - 1
    assert summary["found_optimum"] == pytest.approx(1 / 3)
    assert Curves({"m": final[:1]}, 0.9, "x").summary()["m"]["final_std"] is None
    assert plot_curves(Curves({"m": final[:1]}, 0.9, "x"), tmp_path / "one.png").is_file()


def test_ranks_and_search_lookup(bench, bench_root):
    ids, values = bench.column("cifar10", "pgd@Linf", 8.0)
    best = ids[int(np.argmax(values))]
    assert bench.rank(best, "cifar10", "pgd@Linf", 8.0) == (1, 40)
    lines = rank_lines(bench, best, "cifar10", ["clean", "pgd@Linf"])
    assert "rank" in lines[1] and "#1" in lines[2]
    found = search_lookup(cell_from_code(7), bench_root, "cifar10")
    assert found[0].startswith(cell_from_code(7).to_string()) and "pgd@Linf" in found[2]
    assert search_lookup(cell_from_code(7), bench_root / "nowhere", "cifar10")[0].startswith(
        "table lookup skipped: benchmark root")


@pytest.mark.slow
def test_cli_table_search(bench_root, tmp_path, capsys):
    out = tmp_path / "ts"
    assert main(["table", "search", "--bench-root", str(bench_root), "--budget", "12",
                 "--seeds", "2", "--methods", "random,evolution,tpe,nsga2",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ε=1/255" in text and "nsga2" in text and "best_found.png" in text
    data = json.loads((out / "curves.json").read_text())
    assert set(data["curves"]) == {"random", "evolution", "tpe", "nsga2"}
    assert main(["table", "search", "--bench-root", str(bench_root), "--methods", "bogus",
                 "--out", str(out)]) == 2
    assert "unknown table search strategy 'bogus'" in capsys.readouterr().err
    assert main(["table", "query", "7", "--bench-root", str(bench_root), "--ranks",
                 "--key", "clean"]) == 0
    assert "rank" in capsys.readouterr().out


def test_differentiable_search_looks_its_cell_up(bench_root, tmp_path):
    from robustnas.search import run_search

    result = run_search(overrides=dict(
        space="nb201", dataset="digits", epochs=1, batch_size=16, C=2, layers=3,
        max_steps_per_epoch=1, out=str(tmp_path / "s"), bench_root=str(bench_root)),
        show_progress=False)
    lines = (result.run_dir / "table_lookup.txt").read_text().splitlines()
    assert lines[0].startswith(result.genotype.to_string())
    assert "rank" in lines[1] and lines[2].startswith("  pgd@Linf")


def test_table_search_says_when_the_table_is_partial(bench_root, tmp_path, capsys):
    root = tmp_path / "partial"
    (root / "cifar10").mkdir(parents=True)
    (root / "meta.json").write_bytes((bench_root / "meta.json").read_bytes())
    (root / "cifar10" / "clean_accuracy.json").write_bytes(
        (bench_root / "cifar10" / "clean_accuracy.json").read_bytes())
    pgd = json.loads((bench_root / "cifar10" / "pgd@Linf_accuracy.json").read_text())
    values = pgd["cifar10"]["pgd@Linf"]["accuracy"]
    for rep in list(values)[:10]:
        del values[rep]
    (root / "cifar10" / "pgd@Linf_accuracy.json").write_text(json.dumps(pgd))
    out = tmp_path / "ts"
    args = ["table", "search", "--bench-root", str(root), "--budget", "5", "--seeds", "1",
            "--methods", "random", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "partial table: 30 of the 40 evaluated cells" in text
    assert json.loads((out / "curves.json").read_text())["table_cells"] == {
        "with_value": 30, "evaluated": 40}
    args[3] = str(bench_root)
    assert main(args) == 0 and "partial" not in capsys.readouterr().out


def test_table_query_ranks_prints_each_number_once(bench_root, capsys):
    assert main(["table", "query", "7", "--bench-root", str(bench_root), "--ranks",
                 "--key", "clean"]) == 0
    out = capsys.readouterr().out
    assert out.count("clean") == 1 and "rank" in out, out
    assert main(["table", "query", "7", "--bench-root", str(bench_root), "--ranks",
                 "--key", "clean", "--key", "pgd@Linf", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rank, cells = data["ranks"]["clean"]
    assert cells == 40 and 1 <= rank <= 40 and set(data["ranks"]["pgd@Linf"]) == {
        f"{e:g}" for e in EPS}
