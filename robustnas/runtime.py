"""Run-time plumbing shared by the long-running commands: device choice, seeding, RNG state
capture for exact resume, autocast, and turning SIGINT/SIGTERM into a clean checkpoint."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from robustnas.config import DEFAULT_MAX_THREADS
from robustnas.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; an unavailable device is a UsageError."""
    if name in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} requested but CUDA is not available here")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        # else the first CUDA call fails far from here with "invalid device ordinal"
        raise UsageError(f"device {name!r} requested but only {torch.cuda.device_count()} "
                         "CUDA device(s) are visible (CUDA_VISIBLE_DEVICES)")
    return device


PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


@contextlib.contextmanager
def default_dtype(precision: str) -> Iterator[torch.dtype]:
    """Within the block, new floating tensors (parameters, noise, probes) are ``precision``
    (``float32`` or ``float64``); the previous default is restored on leaving, so a
    float64 search through the Python API does not change the caller's default."""
    dtype = PRECISIONS[precision]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield dtype
    finally:
        torch.set_default_dtype(previous)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """All global RNG states as checkpoint-safe data (tensors and plain Python)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached": float(np_state[4])},
        "python": _python_state_to_data(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _python_state_to_data(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def autocast_factory(device: torch.device, amp: bool) -> Callable[[], Any]:
    """A zero-argument context factory: bf16 autocast on CUDA when ``amp``, else a no-op."""
    if amp and device.type != "cuda":
        raise UsageError("--amp (bf16 autocast) is only supported on CUDA devices")
    if not amp:
        return contextlib.nullcontext
    return lambda: torch.autocast("cuda", dtype=torch.bfloat16)


class StopRequested:
    """Records SIGINT/SIGTERM so the loop can checkpoint at the next step boundary."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None


@contextlib.contextmanager
def graceful_stop() -> Iterator[StopRequested]:
    """Within the block, SIGINT/SIGTERM set a flag instead of killing the process.

    A second signal of the same kind restores the default behaviour (so a user can still
    force-quit). Outside the main thread (e.g. in a notebook worker) nothing is installed.
    """
    flag = StopRequested()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        if flag.signum is not None:
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        flag.signum = signum
        # Say so at once (the step in progress may take a while on a busy machine); os.write
        # because a buffered stderr may be in the middle of a write when the signal lands.
        with contextlib.suppress(OSError):
            os.write(sys.stderr.fileno(), b"\nstopping after this step... (interrupt again "
                     b"to quit without a checkpoint)\n")

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread
        previous.clear()
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """The thread count used when none is given: ``OMP_NUM_THREADS`` when it is set, else
    ``min(cores, 4)``.

    PyTorch's own default (one thread per core) spins OpenMP workers on every core; on a
    machine shared with other processes they wait for each other at every operation, and
    runs became many times slower than on an idle machine (issue 12: 38 minutes instead of
    80 seconds). The small convolutions of a DARTS supernet gain little beyond a few
    threads, so the default leaves the other cores alone.
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return min(available_cores(), DEFAULT_MAX_THREADS)


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` CPU threads for PyTorch's intra-op parallelism; returns the number.

    ``None`` or 0 picks :func:`default_threads`. Negative values are a UsageError. The
    shared entry point of ``search``, ``retrain``, ``evaluate`` and ``study`` (``--threads``).
    """
    if threads is not None and int(threads) < 0:
        raise UsageError(f"threads must be a positive number, or 0 for the default "
                         f"(min(cores, {DEFAULT_MAX_THREADS}) or OMP_NUM_THREADS), got {threads}")
    count = int(threads) if threads else default_threads()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
