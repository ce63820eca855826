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


@pytest.mark.slow
def test_variant_memory_is_measured_in_a_fresh_process():
    import argparse

    from robustnas.benchmarks.search import build_variant

    args = argparse.Namespace(channels=2, layers=3, batch_size=2, image_size=8, classes=10)
    mem = timing.variant_memory(build_variant, "first", args, torch.device("cpu"))
    assert mem["peak_mb"] > 0
    assert mem["own_mb"] is None or 0 <= mem["own_mb"] < mem["peak_mb"]
