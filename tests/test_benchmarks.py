"""Benchmark statistics (true medians, paired ratios), timing rounds and the bench commands."""

from __future__ import annotations

import json

import pytest
import torch

from robustnas.benchmarks import timing
from robustnas.benchmarks.timing import (
    Spread,
    Timings,
    median,
    paired_ratios,
    ratio_text,
    time_interleaved,
)


def test_median_odd_and_even_counts():
    assert median([3.0, 1.0, 2.0]) == 2.0
    # Even count: the mean of the two middle values, not the upper one (the old bug).
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([1.0, 10.0]) == 5.5
    assert median([7.0]) == 7.0
    with pytest.raises(ValueError):
        median([])


def test_paired_ratios_are_per_round():
    # Round 2 was slow for everybody (machine load): a paired ratio is unaffected, while a
    # ratio of independent medians would not be.
    base = [1.0, 3.0, 1.2, 2.0]
    fast = [0.5, 1.5, 0.6, 1.0]
    assert paired_ratios(base, fast) == [2.0, 2.0, 2.0, 2.0]
    t = Timings(wall={"base": base, "fast": fast}, cpu={"base": base, "fast": fast})
    s = t.speedup("fast", "base")
    assert (s.median, s.low, s.high) == (2.0, 2.0, 2.0)
    assert t.speedup("base", "base").median == 1.0
    # Unequal per-round ratios: median of the ratios, with min and max.
    t2 = Timings(wall={"b": [1.0, 1.0, 1.0, 1.0], "v": [0.5, 1.0, 0.8, 0.25]}, cpu={})
    s2 = t2.speedup("v", "b")
    assert s2.median == pytest.approx((1.25 + 2.0) / 2)
    assert (s2.low, s2.high) == (1.0, 4.0)
    assert ratio_text(s2) == "1.62x (1.00-4.00)"
    assert ratio_text(Spread(1.5, 1.5, 1.5)) == "1.50x"
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])


def test_time_interleaved_records_every_round(monkeypatch):
    clock = {"wall": 0.0, "cpu": 0.0}
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(timing.time, "process_time", lambda: clock["cpu"])
    calls = {"a": 0, "b": 0}

    def make(name: str, wall: float, cpu: float):
        def step() -> None:
            calls[name] += 1
            clock["wall"] += wall
            clock["cpu"] += cpu
        return step

    t = time_interleaved({"a": make("a", 2.0, 1.0), "b": make("b", 1.0, 2.0)},
                         torch.device("cpu"), warmup=1, iters=2, rounds=4)
    assert calls == {"a": 1 + 8, "b": 1 + 8}
    assert t.wall == {"a": [2.0] * 4, "b": [1.0] * 4}
    assert t.cpu == {"a": [1.0] * 4, "b": [2.0] * 4}
    assert t.speedup("b", "a").median == 2.0
    assert t.cpu_speedup("b", "a").median == 0.5


@pytest.mark.slow
def test_bench_search_tiny_json(capsys):
    from robustnas.cli import main

    rc = main(["bench", "search", "--channels", "2", "--layers", "3", "--batch-size", "2",
               "--image-size", "8", "--warmup", "0", "--iters", "1", "--rounds", "2",
               "--device", "cpu", "--variants", "first,channels_last", "--no-memory",
               "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r for r in result["rows"]}
    assert list(rows) == ["first", "channels_last"]
    raw = rows["channels_last"]["raw"]
    assert len(raw["wall_s"]) == 2 and len(raw["cpu_s"]) == 2
    expected = [b / v for b, v in zip(rows["first"]["raw"]["wall_s"], raw["wall_s"])]
    assert raw["speedup_per_round"] == pytest.approx(expected)
    assert rows["first"]["speed_vs_first"] == "1.00x"
    assert "cpu_ms" in rows["first"]
    assert main(["bench", "search", "--variants", "first,bogus", "--device", "cpu"]) == 2
    assert "bogus" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["jacobian", "beta", "sdarts-rs", "gdas+jacobian",
                                  "pc-darts+sdarts-rs"])
def test_every_regulariser_is_a_search_variant(name):
    """The study's methods can be timed side by side (a weight-step-only SDARTS counts as
    active, not as a plain step under its name)."""
    import argparse

    from robustnas.benchmarks.search import _variant_settings, build_variant

    settings = _variant_settings(name)
    assert settings["regularizer"] == name.split("+")[-1]
    args = argparse.Namespace(channels=4, layers=3, batch_size=2, image_size=8, classes=10)
    build_variant(name, args, torch.device("cpu"))()


@pytest.mark.slow
def test_variant_memory_is_measured_in_a_fresh_process():
    import argparse

    from robustnas.benchmarks.search import build_variant

    args = argparse.Namespace(channels=4, layers=3, batch_size=2, image_size=8, classes=10)
    mem = timing.variant_memory(build_variant, "first", args, torch.device("cpu"))
    assert mem["peak_mb"] > 0
    assert mem["own_mb"] is None or 0 <= mem["own_mb"] < mem["peak_mb"]


# -- bench train/attack: the reference (pre-issue-11) retraining network ----------------------
def test_reference_drop_path_equals_todays_and_is_swapped_in_and_back(monkeypatch):
    from robustnas.benchmarks import reference as bench_train
    from robustnas.space.darts import network
    from robustnas.space.darts.catalogue import GENOTYPES
    from robustnas.space.darts.network import Network

    x = torch.randn(8, 3, 4, 4)
    outputs = []
    for fn in (network.drop_path, bench_train.drop_path_before_issue_11):
        torch.manual_seed(3)
        outputs.append(fn(x, 0.3))
    assert torch.allclose(outputs[0], outputs[1], rtol=1e-6, atol=1e-7)
    assert (outputs[0] == 0).any() and (outputs[0] != 0).any()  # the mask dropped samples

    calls = []
    reference = bench_train.drop_path_before_issue_11

    def counting(h: torch.Tensor, p: float) -> torch.Tensor:
        calls.append(p)
        return reference(h, p)

    monkeypatch.setattr(bench_train, "drop_path_before_issue_11", counting)
    todays = network.drop_path
    net = Network(GENOTYPES.get("DARTS_V2"), C=4, num_classes=10, layers=3, auxiliary=False)
    net.drop_path_prob = 0.2
    net.train()
    with bench_train.reference_drop_path():
        assert network.drop_path is counting
        net(torch.rand(2, 3, 8, 8))
    assert calls and set(calls) == {0.2}  # the cells called the reference
    assert network.drop_path is todays
    with pytest.raises(RuntimeError), bench_train.reference_drop_path():
        raise RuntimeError
    assert network.drop_path is todays


def test_plain_strided_convs_compute_the_same_and_share_the_weight():
    from torch import nn

    from robustnas.benchmarks.reference import use_plain_strided_convs
    from robustnas.space.darts.catalogue import GENOTYPES
    from robustnas.space.darts.network import Network
    from robustnas.space.darts.ops import FactorizedReduce, _StridedPointwise

    torch.manual_seed(0)
    model = nn.Sequential(FactorizedReduce(4, 8), FactorizedReduce(8, 8)).eval()
    x = torch.rand(2, 4, 8, 8)
    before = model(x)
    tiny, big = model[0].conv_1, model[1].conv_1
    assert use_plain_strided_convs(model) == 2  # both convs of the 8-channel layer
    assert model[0].conv_1 is tiny and isinstance(tiny, _StridedPointwise)  # work-around kept
    assert type(model[1].conv_1) is nn.Conv2d and model[1].conv_1.weight is big.weight
    assert torch.allclose(model(x), before, rtol=1e-5, atol=1e-6)

    net = Network(GENOTYPES.get("DARTS_V2"), C=4, num_classes=10, layers=3, auxiliary=False)
    net.eval()
    x = torch.rand(2, 3, 8, 8)
    before = net(x)
    assert use_plain_strided_convs(net) > 0
    assert not any(isinstance(m, _StridedPointwise) for m in net.modules())
    assert torch.allclose(net(x), before, rtol=1e-5, atol=1e-6)


def test_bench_train_reference_rows_are_paired_with_their_twins(capsys):
    from robustnas.cli import main

    rc = main(["bench", "train", "--channels", "4", "--layers", "3", "--batch-size", "2",
               "--image-size", "8", "--steps", "1", "--warmup", "0", "--iters", "1",
               "--rounds", "2", "--device", "cpu", "--no-memory", "--json",
               "--variants", "reference,standard,standard+reference"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r for r in result["rows"]}
    assert list(rows) == ["pgd-1 fp32", "pgd-1 reference", "standard fp32",
                          "standard reference"]
    for name, twin in (("pgd-1 fp32", "pgd-1 reference"), ("standard fp32",
                                                            "standard reference")):
        expected = Spread.of(paired_ratios(rows[twin]["raw"]["wall_s"],
                                           rows[name]["raw"]["wall_s"]))
        assert rows[name]["vs_own_reference"] == ratio_text(expected)
        assert rows[name]["own_reference_cpu"] == ratio_text(Spread.of(paired_ratios(
            rows[twin]["raw"]["cpu_s"], rows[name]["raw"]["cpu_s"])))
        assert rows[twin]["vs_own_reference"] == rows[twin]["own_reference_cpu"] == ""
    assert main(["bench", "train", "--variants", "standard+bogus", "--device", "cpu"]) == 2
    assert "bogus" in capsys.readouterr().err


# -- bench search: no step keeps state alive --------------------------------------------------
@pytest.mark.parametrize("name", ["first", "advrush",
                                  pytest.param("second", marks=pytest.mark.slow),
                                  pytest.param("lipschitz", marks=pytest.mark.slow)])
def test_search_step_leaves_no_graph_and_no_growing_state(name):
    """A finished step holds no autograd graph, and repeated steps keep the number of live
    tensors constant (what the interleaved rounds rely on: a variant's memory is its step's
    transient peak, not state that grows round after round)."""
    import argparse
    import gc
    import warnings

    from robustnas.benchmarks.search import build_variant

    args = argparse.Namespace(channels=4, layers=3, batch_size=2, image_size=8, classes=10)
    step = build_variant(name, args, torch.device("cpu"))

    def live() -> tuple[int, int]:
        gc.collect()
        with warnings.catch_warnings():  # isinstance on lazy torch.distributed attributes
            warnings.simplefilter("ignore")
            tensors = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
        return len(tensors), sum(t.grad_fn is not None for t in tensors)

    step()
    step()  # optimiser states exist from the first step on
    count, with_graph = live()
    assert with_graph == 0
    step()
    assert live() == (count, 0)
