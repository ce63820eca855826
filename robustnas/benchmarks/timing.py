"""Timing, statistics and memory helpers shared by the benchmarks.

How a benchmark is measured (``robustnas bench …``):

* Every variant is built once and warmed up; then the variants take turns, ``rounds``
  times, each doing ``iters`` calls per turn (:func:`time_interleaved`). A drift of the
  machine (clock, other load) therefore hits all variants of one round alike.
* Wall time (``time.perf_counter``) and, on CPU, the process CPU time
  (``time.process_time``: all threads together) are recorded per round.
* A ratio to the baseline is *paired*: it is taken round by round (baseline time of round r
  over the variant's time of round r), and the median of those per-round ratios is reported
  with their minimum and maximum (:func:`paired_ratios`). It is never a ratio of two
  independent medians.
* Medians are true medians: the mean of the two middle values for an even count
  (:func:`median`).
* Memory is each variant's own: on CPU the variant is built and stepped once in a fresh
  process and its peak resident memory above the process's memory before the build is
  reported (:func:`variant_memory`); on CUDA the peak-allocation counter is reset before the
  variant and the memory allocated before the build is subtracted.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

StepBuilder = Callable[..., Callable[[], None]]
"""A module-level function ``build(name, args, device) -> step`` (picklable by reference)."""


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock times are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- statistics ----------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    """The median; for an even count, the mean of the two middle values."""
    if not values:
        raise ValueError("median of an empty sequence")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2.0


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of a sample."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarise ``values``."""
        return cls(median(values), float(min(values)), float(max(values)))


def paired_ratios(baseline: Sequence[float], variant: Sequence[float]) -> list[float]:
    """Per-round speed ratios ``baseline[r] / variant[r]`` (> 1: the variant is faster)."""
    if len(baseline) != len(variant):
        raise ValueError(f"paired samples differ in length ({len(baseline)} vs {len(variant)})")
    return [b / v for b, v in zip(baseline, variant)]


@dataclass
class Timings:
    """Seconds per call of each variant, one value per round (wall, and CPU time)."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def wall_spread(self, name: str) -> Spread:
        """Median/min/max wall seconds per call of ``name``."""
        return Spread.of(self.wall[name])

    def cpu_spread(self, name: str) -> Spread:
        """Median/min/max CPU seconds per call of ``name`` (all threads together)."""
        return Spread.of(self.cpu[name])

    def speedup(self, name: str, baseline: str) -> Spread:
        """Paired per-round speed ratio of ``name`` against ``baseline`` (wall time)."""
        return Spread.of(paired_ratios(self.wall[baseline], self.wall[name]))

    def cpu_speedup(self, name: str, baseline: str) -> Spread:
        """Paired per-round ratio of CPU time of ``baseline`` over ``name``."""
        return Spread.of(paired_ratios(self.cpu[baseline], self.cpu[name]))


def time_interleaved(steps: dict[str, Callable[[], None]], device: torch.device, warmup: int,
                     iters: int, rounds: int) -> Timings:
    """Time each step in alternating rounds (see the module docstring)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    synchronize(device)
    timings = Timings({name: [] for name in steps}, {name: [] for name in steps})
    for _ in range(rounds):
        for name, step in steps.items():
            synchronize(device)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(iters):
                step()
            synchronize(device)
            timings.wall[name].append((time.perf_counter() - wall0) / iters)
            timings.cpu[name].append((time.process_time() - cpu0) / iters)
    return timings


CPU_RATIO_NOTE = ("own_reference_cpu: the same paired ratio on process CPU time (all threads); "
                  "unlike wall time it does not count time the process waited for a core, "
                  "so it is the steadier figure on a shared machine")


def ratio_text(spread: Spread) -> str:
    """``1.32x (1.25–1.40)``; a single round prints without the range."""
    if spread.low == spread.high:
        return f"{spread.median:.2f}x"
    return f"{spread.median:.2f}x ({spread.low:.2f}-{spread.high:.2f})"


def ms_text(spread: Spread) -> str:
    """``123.4`` ms, with ``(min-max)`` when the rounds differ."""
    if spread.low == spread.high:
        return f"{1000 * spread.median:.1f}"
    return f"{1000 * spread.median:.1f} ({1000 * spread.low:.1f}-{1000 * spread.high:.1f})"


def timing_row(timings: Timings, name: str, baseline: str, device: torch.device,
               batch_size: int, ratio_column: str) -> dict[str, str]:
    """The common columns of one benchmark row (times, images/s, paired ratio)."""
    wall = timings.wall_spread(name)
    row = {"step_ms": ms_text(wall), "images_per_s": f"{batch_size / wall.median:.1f}"}
    if device.type == "cpu":
        row["cpu_ms"] = ms_text(timings.cpu_spread(name))
    row[ratio_column] = ratio_text(timings.speedup(name, baseline))
    return row


def timing_columns(device: torch.device, ratio_column: str) -> list[str]:
    """Column names produced by :func:`timing_row`."""
    cols = ["step_ms", "images_per_s"]
    if device.type == "cpu":
        cols.append("cpu_ms")
    return cols + [ratio_column]


def timing_json(timings: Timings, name: str, baseline: str) -> dict[str, Any]:
    """Raw per-round figures of one row, for ``--json``."""
    return {"wall_s": timings.wall[name], "cpu_s": timings.cpu[name],
            "speedup_per_round": paired_ratios(timings.wall[baseline], timings.wall[name])}


# -- memory --------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux/macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _rss_mb() -> float | None:
    """Current resident memory in MiB (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _memory_child(build: StepBuilder, name: str, args: Any, device: torch.device,
                  threads: int, queue: Any) -> None:
    try:
        if threads:
            torch.set_num_threads(threads)
        before = _rss_mb()
        step = build(name, args, device)
        step()
        peak = peak_rss_mb()
        queue.put(("ok", peak, None if before is None else peak - before))
    except BaseException as exc:  # reported to the parent, never a hang
        queue.put(("error", f"{type(exc).__name__}: {exc}", None))


def variant_memory(build: StepBuilder, name: str, args: Any, device: torch.device,
                   timeout: float = 1800.0) -> dict[str, float | None]:
    """Own peak memory of one variant: building it and running one step.

    Returns ``{"peak_mb": …, "own_mb": …}``: on CPU, a fresh (spawned) process's peak RSS
    and that peak minus its RSS just before the build; on CUDA, ``max_memory_allocated``
    after a counter reset, and that minus the memory allocated before the build.
    """
    if device.type == "cuda":
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated(device) / 2**20
        torch.cuda.reset_peak_memory_stats(device)
        step = build(name, args, device)
        step()
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        del step
        torch.cuda.empty_cache()
        return {"peak_mb": peak, "own_mb": peak - before}
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_child,
                       args=(build, name, args, device, torch.get_num_threads(), queue))
    proc.start()
    deadline = time.monotonic() + timeout
    result = None
    try:
        while result is None and time.monotonic() < deadline:
            try:
                result = queue.get(timeout=1.0)
            except Exception:  # queue.Empty: still running, or died without a word
                if not proc.is_alive() and queue.empty():
                    break
    finally:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.terminate()
    if result is None:
        raise RuntimeError(f"memory probe of variant {name!r} ended without a result "
                           f"(exit code {proc.exitcode})")
    status, peak, own = result
    if status != "ok":
        raise RuntimeError(f"memory probe of variant {name!r} failed: {peak}")
    return {"peak_mb": peak, "own_mb": own}


def memory_text(memory: dict[str, float | None] | None) -> str:
    """The ``own_mem_mb`` cell: own memory (or the peak when own is unknown)."""
    if not memory:
        return ""
    value = memory["own_mb"] if memory["own_mb"] is not None else memory["peak_mb"]
    return "" if value is None else f"{value:.0f}"


def memory_note(device: torch.device) -> str:
    """What the memory column means on ``device``."""
    if device.type == "cuda":
        return ("own_mem_mb: the variant's peak CUDA allocation (counter reset before it) "
                "minus the memory allocated before it was built")
    return ("own_mem_mb: peak RSS of a fresh process that builds only this variant and runs "
            "one step, minus that process's RSS just before the build (imports excluded)")


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A plain fixed-width table."""
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
