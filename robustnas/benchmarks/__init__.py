"""Benchmarks behind ``robustnas bench {search,train,attack}``.

Each module has ``add_arguments(parser)`` and ``run(args) -> dict``. Every figure is
measured in the same process as an eager fp32 baseline of the same model, and reported
as images/s plus a ratio to that baseline.
"""

BENCHMARKS = ("search", "train", "attack", "suite")
