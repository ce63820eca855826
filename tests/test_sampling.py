"""Random DARTS cells: validity, determinism, no duplicates, uniformity (chi-square)."""

from __future__ import annotations

import json
import random
from collections import Counter
from itertools import combinations

import pytest
from scipy.stats import chisquare

from robustnas.cli import main
from robustnas.errors import UsageError
from robustnas.space.darts.catalogue import load_genotype
from robustnas.space.darts.genotype import validate
from robustnas.space.darts.sampler import DARTS_OPS, darts_cell_count
from robustnas.space.darts.sampler import draw_cell as _darts_cell
from robustnas.space.sampling import (
    sample_genotypes,
)

N_UNIFORM = 3000


@pytest.fixture
def coin_space():
    """A two-architecture space (0 or 1), registered from test code only."""
    from robustnas.space.protocol import SearchSpace
    from robustnas.space.spaces import register_space, unregister_space

    class Coin(SearchSpace):
        name = "coin"
        genotype_format = "coin"
        size = 2

        def load(self, spec):
            return int(spec)

        def from_dict(self, data, source="genotype"):
            return int(data["side"])

        def network(self, genotype, **sizes):
            raise NotImplementedError

        def draw(self, rng, provenance):
            return rng.randrange(2)

        def suggest(self, trial, provenance=None):
            return trial.suggest_categorical("side", [0, 1])

    register_space(Coin())
    yield "coin"
    unregister_space("coin")


@pytest.fixture(scope="module")
def draws():
    return sample_genotypes(N_UNIFORM, seed=12345)


def _op_counts(genotypes):
    return Counter(op for g in genotypes for cell in (g.normal, g.reduce) for op, _ in cell)


def _pair_counts(genotypes, cell, node):
    return Counter((getattr(g, cell)[2 * node][1], getattr(g, cell)[2 * node + 1][1])
                   for g in genotypes)


def test_samples_are_valid_darts_genotypes(draws):
    for g in draws[:200]:
        validate(g)
        assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
        for cell in (g.normal, g.reduce):
            assert len(cell) == 8
            for node in range(4):
                (op_a, a), (op_b, b) = cell[2 * node], cell[2 * node + 1]
                assert a != b and 0 <= a < node + 2 and 0 <= b < node + 2
                assert op_a in DARTS_OPS and op_b in DARTS_OPS and "none" not in (op_a, op_b)


def test_deterministic_prefix_stable_and_distinct(draws):
    again = sample_genotypes(50, seed=12345)
    assert again == draws[:50]
    assert [g.provenance for g in again] == [g.provenance for g in draws[:50]]
    assert sample_genotypes(50, seed=1) != again
    assert len(set(draws)) == len(draws)
    assert draws[7].provenance == {"name": "RANDOM_12345_7", "sampler": "uniform-darts",
                                   "space": "darts", "seed": 12345, "index": 7}


def test_ops_uniform_chi_square(draws):
    counts = _op_counts(draws)
    assert set(counts) == set(DARTS_OPS)
    observed = [counts[op] for op in DARTS_OPS]
    assert chisquare(observed).pvalue > 1e-3


def test_input_pairs_uniform_per_node_chi_square(draws):
    for cell in ("normal", "reduce"):
        for node in range(4):
            counts = _pair_counts(draws, cell, node)
            pairs = list(combinations(range(node + 2), 2))
            assert set(counts) <= set(pairs)
            observed = [counts[p] for p in pairs]
            if len(pairs) > 1:
                assert chisquare(observed).pvalue > 1e-3, (cell, node, observed)


def test_chi_square_detects_a_biased_sampler():
    """The uniformity check has power: inputs drawn independently per edge (a common
    mistake, biased towards later pairs after rejection of equal inputs is skipped) and
    a first-op-favouring sampler both fail it."""
    rng = random.Random(0)
    biased = Counter()
    for _ in range(N_UNIFORM):  # node 3: first input uniform, second the max of two draws
        a = rng.randrange(5)
        b = max(rng.randrange(5), rng.randrange(5))
        while b == a:
            b = max(rng.randrange(5), rng.randrange(5))
        biased[tuple(sorted((a, b)))] += 1
    pairs = list(combinations(range(5), 2))
    assert chisquare([biased[p] for p in pairs]).pvalue < 1e-6
    ops = Counter(rng.choice(DARTS_OPS + DARTS_OPS[:1]) for _ in range(8 * N_UNIFORM))
    assert chisquare([ops[o] for o in DARTS_OPS]).pvalue < 1e-6


def test_cell_is_drawn_from_the_whole_space():
    rng = random.Random(3)
    cells = {tuple(_darts_cell(rng)) for _ in range(2000)}
    assert len(cells) == 2000  # about 1e9 cells: collisions would mean a tiny space
    assert darts_cell_count() == 1 * 3 * 6 * 10 * 49 ** 4


def test_duplicates_only_when_asked(coin_space):
    assert sorted(sample_genotypes(2, seed=0, space="coin")) == [0, 1]
    with_dups = sample_genotypes(20, seed=0, space="coin", allow_duplicates=True)
    assert len(with_dups) == 20 and set(with_dups) == {0, 1}
    with pytest.raises(UsageError, match="only 2"):
        sample_genotypes(3, seed=0, space="coin")
    with pytest.raises(UsageError):
        sample_genotypes(-1, seed=0)
    with pytest.raises(UsageError):
        sample_genotypes(2, seed=0, space="nope")


def test_sample_cli_writes_genotypes_with_provenance(tmp_path, capsys):
    out = tmp_path / "cells"
    assert main(["sample", "--n", "4", "--seed", "9", "--out", str(out)]) == 0
    files = sorted(out.glob("random_9_*.json"))
    assert [f.name for f in files] == [f"random_9_{i:04d}.json" for i in range(4)]
    loaded = [load_genotype(f) for f in files]
    assert loaded == sample_genotypes(4, seed=9)
    assert loaded[2].provenance["index"] == 2 and loaded[2].provenance["seed"] == 9
    manifest = json.loads((out / "samples.json").read_text())
    assert manifest["files"] == [f.name for f in files] and manifest["space"] == "darts"
    assert "written:" in capsys.readouterr().out


def test_sample_cli_refuses_an_existing_folder_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "cells"
    assert main(["sample", "--n", "4", "--seed", "1", "--out", str(out)]) == 0
    before = {f: f.read_bytes() for f in out.iterdir()}
    capsys.readouterr()
    assert main(["sample", "--n", "2", "--seed", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds 5 sampled file(s)" in err and \
        "--overwrite" in err
    assert {f: f.read_bytes() for f in out.iterdir()} == before  # nothing touched
    assert main(["sample", "--n", "2", "--seed", "2", "--out", str(out), "--overwrite"]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["random_2_0000.json",
                                                       "random_2_0001.json", "samples.json"]


def test_sample_cli_bad_input_one_line(tmp_path, capsys):
    assert main(["sample", "--n", "0", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n" in err
