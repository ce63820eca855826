"""Benchmarks behind ``robustnas bench {search,train,attack}``.

Each module has ``run(args) -> dict`` (its options are declared in
:mod:`robustnas.cli.bench_options`). Every figure is
measured in the same process as an eager fp32 baseline of the same model, and reported
as images/s plus a ratio to that baseline.
"""

BENCHMARKS = ("search", "train", "attack", "suite")
