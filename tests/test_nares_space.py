"""The NARes space: genotype codec, WideResNet network, sampler, picture and info."""

from __future__ import annotations

import collections
import itertools
import json
import random

import numpy as np
import pytest
import torch

from robustnas.errors import CheckpointError, GenotypeError
from robustnas.space.complexity import count_parameters
from robustnas.space.nares import genotype as codec
from robustnas.space.nares.genotype import (
    DEPTHS,
    NUM_ARCHS,
    WIDTHS,
    NAResGenotype,
    arch_index,
    genotype_at,
    is_nares_string,
    load_nares_genotype,
    nares_genotype_from_dict,
    save_nares_genotype,
)
from robustnas.space.nares.info import nares_info
from robustnas.space.nares.network import (
    NAResNetwork,
    nares_model_from_arch,
    rebuild_nares_network,
)
from robustnas.space.nares.picture import draw_nares, nares_image
from robustnas.space.nares.sampler import draw, mutate, neighbours, sample_genotypes, suggest

WRN_34_10 = "5,10,5,10,5,10"
TINY = "1,1,1,1,1,1"


# -- genotype codec -------------------------------------------------------------------------
def test_string_and_json_round_trip_exactly(tmp_path):
    g = NAResGenotype.from_string("7,8,4,12, 11,16", provenance={"seed": 3})
    assert g.depths == (7, 4, 11) and g.widths == (8, 12, 16)
    assert g.to_string() == "7,8,4,12,11,16" and str(g) == g.to_string()
    assert NAResGenotype.from_string(g.to_string()) == g
    data = g.to_dict()
    assert data == {"format": "robustnas-nares-genotype", "version": 1, "depths": [7, 4, 11],
                    "widths": [8, 12, 16], "provenance": {"seed": 3}}
    back = nares_genotype_from_dict(json.loads(json.dumps(data)))
    assert back == g and back.provenance == {"seed": 3} and back.to_dict() == data
    path = save_nares_genotype(g, tmp_path / "g.json")
    loaded = load_nares_genotype(path)
    assert loaded.to_dict() == data and loaded.space == "nares"
    assert load_nares_genotype(str(path)) == g and load_nares_genotype(g) is g
    assert load_nares_genotype(g.to_string()) == g


def test_authors_dict_and_queries():
    authors = {"D1": 5, "W1": 10, "D2": 5, "W2": 10, "D3": 5, "W3": 10}
    g = nares_genotype_from_dict(authors)
    assert g.to_string() == WRN_34_10 and g.to_authors_dict() == authors
    assert load_nares_genotype(authors) == g
    assert g.channels() == (160, 320, 640)
    assert g.wrn_name() == "wrn-34-10" and g.describe() == "5,10,5,10,5,10 (WRN-34-10)"
    assert NAResGenotype.from_string("4,10,5,10,5,10").wrn_name() is None
    # Provenance is not part of the identity: genotypes are dict keys.
    assert hash(g) == hash(NAResGenotype(g.depths, g.widths, {"run": "x"}))
    assert {g: 1}[NAResGenotype((5, 5, 5), (10, 10, 10))] == 1


def test_non_strict_accepts_small_networks_only_when_asked():
    with pytest.raises(GenotypeError, match=r"D1 = 1 is not a NARes choice .*strict=False"):
        NAResGenotype.from_string(TINY)
    tiny = NAResGenotype.from_string(TINY, strict=False)
    assert not tiny.in_benchmark() and tiny.channels() == (16, 32, 64)
    assert load_nares_genotype(TINY, strict=False) == tiny
    assert nares_genotype_from_dict(tiny.to_dict(), strict=False) == tiny
    with pytest.raises(GenotypeError, match="W2 = 3 is not a NARes choice"):
        load_nares_genotype(NAResGenotype((4, 4, 4), (8, 3, 8), strict=False))
    with pytest.raises(GenotypeError, match="D2 must be at least 1"):
        NAResGenotype.from_string("1,1,0,1,1,1", strict=False)


@pytest.mark.parametrize("text, message", [
    ("5,10,5", "six comma-separated integers"),
    ("5,10,5,10,5,10,5", "got 7 value"),
    ("5,10,5,x,5,10", r"W2 = 'x' is not a non-negative integer"),
    ("5,10,5,-10,5,10", "W2 = '-10'"),
    ("5,11,5,10,5,10", "W1 = 11 is not a NARes choice"),
    ("6,10,5,10,5,10", "D1 = 6 is not a NARes choice"),
    ("wrn-34-10", "neither a string like '5,10,5,10,5,10'"),
])
def test_bad_strings_are_one_line_errors(text, message):
    with pytest.raises(GenotypeError, match=message) as info:
        load_nares_genotype(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("data, message", [
    ([5, 10], "expected a JSON object"),
    ({"format": "robustnas-nb201-genotype", "arch": "|x|"}, "not a robustnas NARes genotype"),
    ({"format": "robustnas-nares-genotype", "version": 2, "depths": [5] * 3,
      "widths": [10] * 3}, "unsupported genotype version 2"),
    ({"format": "robustnas-nares-genotype", "depths": [5] * 3, "widths": [10] * 3,
      "extra": 1}, "unknown field"),
    ({"format": "robustnas-nares-genotype", "depths": [5, 5], "widths": [10] * 3},
     "3 depths"),
    ({"format": "robustnas-nares-genotype", "depths": [5, 5, "5"], "widths": [10] * 3},
     "D3 must be an integer"),
    ({"format": "robustnas-nares-genotype", "depths": [5] * 3, "widths": [10, True, 10]},
     "W2 must be an integer"),
    ({"format": "robustnas-nares-genotype", "widths": [10] * 3}, "'depths' must be a list"),
    ({"D1": 5, "W1": 10, "D2": 5, "W2": 10, "D3": 5, "W3": 10, "D4": 5}, "unknown field"),
])
def test_bad_json_is_one_line_errors(data, message):
    with pytest.raises(GenotypeError, match=message) as info:
        nares_genotype_from_dict(data, "g.json")
    assert str(info.value).startswith("g.json") or "JSON object" in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GenotypeError, match="not valid JSON"):
        load_nares_genotype(tmp_path / "bad.json")
    with pytest.raises(GenotypeError, match="neither a string"):
        load_nares_genotype(tmp_path / "missing.json")
    assert is_nares_string(" 5, 10,5,10,5,10 ") and not is_nares_string("5,10,5")


def test_enumeration_follows_the_authors_order():
    all_archs = codec.ALL
    assert len(all_archs) == NUM_ARCHS == 15625 and len(set(all_archs)) == NUM_ARCHS
    # The authors' get_arch_iterator: itertools.product(D1, W1, D2, W2, D3, W3).
    expected = itertools.product(DEPTHS, WIDTHS, DEPTHS, WIDTHS, DEPTHS, WIDTHS)
    for g, values in zip(all_archs[:40], expected):
        assert g.coordinates() == values
    assert all_archs[0].to_string() == "4,8,4,8,4,8"
    assert all_archs[-1].to_string() == "11,16,11,16,11,16"
    for i in (0, 1, 24, 25, 3907, NUM_ARCHS - 1):
        assert arch_index(all_archs[i]) == i and genotype_at(i) == all_archs[i]
    with pytest.raises(GenotypeError, match="out of range"):
        genotype_at(NUM_ARCHS)
    with pytest.raises(GenotypeError, match="not a NARes benchmark"):
        arch_index(NAResGenotype.from_string(TINY, strict=False))


# -- network --------------------------------------------------------------------------------
@pytest.mark.parametrize("arch, params", [(WRN_34_10, 46_160_474), ("4,10,4,10,4,10",
                                                                    36_479_194)])
def test_parameter_counts_match_wrn_34_10_and_wrn_28_10(arch, params):
    net = NAResNetwork(arch)
    assert count_parameters(net) == params  # no forward at this size
    assert net.genotype.to_string() == arch and net.space == "nares"


def test_layout_is_the_handcrafted_wideresnet():
    from robustnas.space.handcrafted import build_handcrafted

    ours = NAResNetwork(NAResGenotype.from_string("2,3,2,3,2,3", strict=False))
    theirs = build_handcrafted("wrn-16-3")
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
        [(k, v.shape) for k, v in theirs.state_dict().items()]


def test_tiny_forward_and_features():
    torch.manual_seed(0)
    net = NAResNetwork(TINY, num_classes=7, mean=[0.5] * 3, std=[0.25] * 3).eval()
    x = torch.rand(2, 3, 32, 32)
    logits = net(x)
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    assert net.forward_features(x).shape == (2, 64, 8, 8)
    assert net.describe() == "NARes 1,1,1,1,1,1 (WRN-10-1)"
    # Per-stage depth and width: stage 2 has 3 blocks of 32 * 2 channels.
    mixed = NAResNetwork(NAResGenotype((1, 3, 2), (1, 2, 1), strict=False))
    assert [len(g) for g in mixed.groups] == [1, 3, 2]
    assert mixed.groups[1][0].conv1.out_channels == 64 and mixed.classifier.in_features == 64


def test_payload_rebuilds_the_network():
    torch.manual_seed(0)
    net = NAResNetwork(TINY, num_classes=5, in_channels=1, mean=[0.1], std=[0.3]).eval()
    arch = net.payload_arch()
    assert net.payload_kind == "nares-network"
    assert arch == {"num_classes": 5, "in_channels": 1, "mean": [0.1], "std": [pytest.approx(0.3)],
                    "genotype": net.genotype.to_dict()}
    arch = json.loads(json.dumps(arch))  # as a checkpoint stores it
    rebuilt = nares_model_from_arch(arch, "ckpt.pt")
    rebuilt.load_state_dict(net.state_dict())
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(rebuilt.eval()(x), net(x)) and rebuilt.genotype == net.genotype
    again = rebuild_nares_network({"kind": "nares-network", "arch": arch}, "ckpt.pt")
    assert isinstance(again, NAResNetwork)
    with pytest.raises(CheckpointError, match="ckpt.pt: a NARes network's arch needs"):
        nares_model_from_arch({"num_classes": 5}, "ckpt.pt")
    with pytest.raises(CheckpointError, match="unknown NARes network argument"):
        nares_model_from_arch({**arch, "C": 16}, "ckpt.pt")
    with pytest.raises(CheckpointError, match="ckpt.pt: .*D1 must be at least 1"):
        nares_model_from_arch({**arch, "genotype": {**arch["genotype"], "depths": [0, 1, 1]}},
                              "ckpt.pt")


def test_lipschitz_bound_is_finite():
    from robustnas.evaluation.lipschitz import lipschitz_upper_bound

    torch.manual_seed(0)
    net = NAResNetwork(TINY, in_channels=1).eval()
    assert 1.0 < lipschitz_upper_bound(net, (1, 8, 8)) < float("inf")


# -- sampler --------------------------------------------------------------------------------
def test_draws_are_seeded_and_uniform_per_coordinate():
    first = sample_genotypes(4000, seed=1)
    assert first == sample_genotypes(4000, seed=1) and first != sample_genotypes(4000, seed=2)
    assert all(g.in_benchmark() for g in first)
    for k in range(6):
        counts = collections.Counter(g.coordinates()[k] for g in first)
        assert set(counts) == set(DEPTHS if k % 2 == 0 else WIDTHS)
        assert max(abs(c - 800) for c in counts.values()) < 120  # about 4.5 sd of 28
    g = draw(random.Random(0), {"sampler": "uniform-nares"})
    assert g.provenance == {"sampler": "uniform-nares"}


def test_mutation_and_neighbours_change_one_coordinate():
    rng = random.Random(0)
    for g in sample_genotypes(50, seed=3):
        child = mutate(g, rng)
        assert sum(a != b for a, b in zip(g.coordinates(), child.coordinates())) == 1
    near = neighbours(NAResGenotype.from_string(WRN_34_10))
    assert len(near) == len(set(near)) == 24
    assert all(sum(a != b for a, b in zip(n.coordinates(), (5, 10) * 3)) == 1 for n in near)


def test_suggest_with_an_optuna_study():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []

    def objective(trial):
        g = suggest(trial, {"trial": trial.number})
        seen.append(g)
        return float(sum(g.depths))

    study.optimize(objective, n_trials=6)
    assert len(seen) == 6 and all(g.in_benchmark() for g in seen)
    assert seen[2].provenance == {"trial": 2}
    for trial, g in zip(study.trials, seen):
        assert list(trial.params) == ["D1", "W1", "D2", "W2", "D3", "W3"]
        assert tuple(trial.params.values()) == g.coordinates()


# -- picture and info -----------------------------------------------------------------------
def test_picture_files_and_image(tmp_path):
    paths = draw_nares(WRN_34_10, tmp_path / "arch.v1", "NARes 5,10,5,10,5,10")
    assert [p.name for p in paths] == ["arch.v1.png", "arch.v1.svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    svg = paths[1].read_text()
    assert 'id="stage-3"' in svg and "D3 = 5 blocks, W3 = 10" in svg
    deep = draw_nares(NAResGenotype((1, 30, 2), (1, 2, 1), strict=False), tmp_path / "deep")
    assert "…" in deep[1].read_text() and "D1 = 1 block," in deep[1].read_text()
    image = nares_image("4,8,11,16,7,12")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] > 100 and image.shape[1] > image.shape[0]


def test_info_counts_parameters_and_macs():
    info = nares_info(TINY, classes=10)
    assert info["params"] == count_parameters(NAResNetwork(TINY))
    assert info["macs"] > 0 and info["in_benchmark"] is False and info["wrn"] == "wrn-10-1"
    with pytest.raises(GenotypeError, match="not a NARes choice"):
        nares_info(TINY, strict=True)
