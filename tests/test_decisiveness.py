"""How decisive a derived genotype is (issue 12, item 2)."""

from __future__ import annotations

import math

import pytest
import torch

from robustnas.search.export import provenance
from robustnas.space.darts.supernet import PRIMITIVES, SuperNet
from robustnas.space.decisiveness import (
    cell_decisiveness,
    decisiveness,
    describe,
    model_decisiveness,
)


def _cell(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_margins_follow_the_darts_derivation():
    ops = ["none", "a", "b", "c"]
    # 2 nodes: node 2 has inputs 0, 1; node 3 has inputs 0, 1, 2
    w = _cell([[0.7, 0.1, 0.1, 0.1],      # none dominates: excluded, margin 0
               [0.1, 0.5, 0.3, 0.1],      # a over b by 0.2
               [0.1, 0.6, 0.2, 0.1],      # node 3 <- 0: strength 0.6, margin 0.4
               [0.1, 0.1, 0.45, 0.35],    # node 3 <- 1: strength 0.45, margin 0.1
               [0.25, 0.25, 0.25, 0.25]])  # node 3 <- 2: strength 0.25 (dropped)
    c = cell_decisiveness(w, ops, steps=2)
    assert c.op_margins == pytest.approx([0.2 * 4, 0.0, 0.4 * 4, 0.1 * 4])
    assert c.edge_margins == pytest.approx([(0.45 - 0.25) * 4])
    row_entropy = [-(p * torch.log(p)).sum().item() / math.log(4) for p in w]
    assert c.entropy == pytest.approx(sum(row_entropy) / 5)


def test_uniform_alpha_is_flagged_and_a_peaked_one_is_clear():
    k = len(PRIMITIVES)
    uniform = torch.full((14, k), 1 / k)
    d = decisiveness({"normal": uniform, "reduce": uniform}, PRIMITIVES, 4)
    assert d.verdict == "uniform" and d.entropy == pytest.approx(1.0)
    assert "indistinguishable from a uniform" in d.warning
    # the quickstart's old outcome: every weight within 0.117..0.136
    gen = torch.Generator().manual_seed(0)
    noisy = torch.softmax(0.06 * torch.randn(14, k, generator=gen), dim=1)
    assert decisiveness({"normal": noisy, "reduce": noisy}, PRIMITIVES, 4).verdict == "uniform"
    peaked = torch.softmax(3 * torch.randn(14, k, generator=gen), dim=1)
    d = decisiveness({"normal": peaked, "reduce": peaked}, PRIMITIVES, 4)
    assert d.verdict == "clear" and d.warning is None and d.entropy < 0.8


def test_provenance_records_it_and_describe_reads_it_back():
    torch.manual_seed(0)
    net = SuperNet(C=4, num_classes=10, layers=3, steps=4, in_channels=1)
    with torch.no_grad():
        net.alpha_normal.normal_(0, 2)
        net.alpha_reduce.normal_(0, 2)
    prov = provenance(net, dataset="digits", regularizer="none", seed=0, epoch=1)
    record = prov["decisiveness"]
    live = model_decisiveness(net)
    assert record["verdict"] == live.verdict
    assert record["median_op_margin"] == pytest.approx(live.median_op_margin, abs=1e-4)
    assert set(live.scalars()) >= {"decisiveness/median_op_margin", "decisiveness/entropy",
                                   "decisiveness/normal_min_op_margin"}
    line, warning = describe(record)
    assert line.startswith(f"decisiveness {live.verdict}") and warning is None
    assert prov["supernet"]["C"] == 4 and prov["supernet"]["in_channels"] == 1


@pytest.mark.slow
def test_quickstart_search_decides(tmp_path):
    """The shipped quickstart config ends with a clearly decided genotype (~2 min)."""
    from pathlib import Path

    from robustnas.search import run_search

    config = Path(__file__).resolve().parents[1] / "experiments/configs/quickstart.yaml"
    result = run_search(config_file=str(config),
                        overrides={"out": str(tmp_path / "qs"), "draw_every": 0},
                        show_progress=False)
    record = result.genotype.provenance["decisiveness"]
    assert record["verdict"] == "clear", record


def test_search_result_carries_decisiveness_and_warns_of_noise(tmp_path, capsys):
    """Through the Python API too: an α that never moved (warm-up only) is reported as noise
    by a UniformGenotypeWarning, and the result says how decisive its genotype is."""
    from robustnas.cli import main
    from robustnas.search import run_search
    from robustnas.space.decisiveness import UniformGenotypeWarning

    tiny = dict(dataset="synthetic", dataset_options={"n_train": 32, "n_test": 16}, C=2,
                layers=3, batch_size=16, epochs=1, warmup_epochs=1, device="cpu", seed=0,
                draw_every=0, eval_hessian_every=0)
    with pytest.warns(UniformGenotypeWarning, match="its operations are noise"):
        result = run_search(overrides=dict(tiny, out=str(tmp_path / "api")),
                            show_progress=False)
    assert result.decisiveness["verdict"] == "uniform"
    assert "noise" in result.decisiveness_warning
    capsys.readouterr()
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["search", "--dataset", "synthetic", "--channels", "2", "--layers", "3",
                     "--batch-size", "16", "--epochs", "1", "--warmup-epochs", "1",
                     "--device", "cpu", "--quiet", "--set", "draw_every=0",
                     "--set", "eval_hessian_every=0",
                     "--set", "dataset_options={n_train: 32, n_test: 16}",
                     "--out", str(tmp_path / "cli")]) == 0
    assert not [w for w in caught if issubclass(w.category, UniformGenotypeWarning)]
    assert capsys.readouterr().err.count("its operations are noise") == 1  # said once
