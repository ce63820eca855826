"""Benchmarks behind ``robustnas bench {search,train,attack,suite}``.

Each benchmark is a module ``robustnas.benchmarks.NAME`` with ``run(args) -> dict``; its
options are declared by a function of :mod:`robustnas.cli.bench_options` registered in
:data:`BENCHMARKS` under NAME (the modules parse no command line themselves). Every figure is
measured in the same process as an eager fp32 baseline of the same model, and reported
as images/s plus a ratio to that baseline.

This package imports no PyTorch: ``robustnas bench`` lists the benchmarks without it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from robustnas.registry import Registry

#: name -> the function that adds that benchmark's options to a parser. The declarations
#: register themselves (``@BENCHMARKS.register("name")``) in robustnas.cli.bench_options,
#: imported on the first lookup; the benchmark itself is module ``robustnas.benchmarks.name``.
BENCHMARKS: Registry[Callable[[argparse.ArgumentParser], None]] = Registry(
    "benchmark", discover=("robustnas.cli.bench_options",))
