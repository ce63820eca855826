"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock times are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(steps: dict[str, Callable[[], None]], device: torch.device, warmup: int,
                     iters: int, rounds: int) -> dict[str, float]:
    """Seconds per call of each step, measured in alternating rounds.

    Each variant is warmed up, then the variants take turns (``rounds`` times ``iters``
    calls each), so drifts of the machine (clock, other load) hit all of them alike. The
    median round is reported.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(iters):
                step()
            synchronize(device)
            samples[name].append((time.perf_counter() - start) / iters)
    return {name: sorted(v)[len(v) // 2] for name, v in samples.items()}


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak CUDA memory since the last reset, in MiB (None on CPU)."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux/macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A plain fixed-width table."""
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
