"""Running averages weighted by batch size, and per-epoch throughput.

Values may be Python numbers or one-element tensors. Tensors are accumulated as tensors
and only converted when an average is read, so updating a meter every step does not force
a GPU synchronisation; reading it (e.g. for the progress bar) does.
"""

from __future__ import annotations

import time
from typing import Any


def _scalar(value: Any) -> float:
    if hasattr(value, "detach"):
        return float(value.detach().float().item())
    return float(value)


class AverageMeter:
    """Sum and count of a quantity; ``avg`` is the mean weighted by ``n`` (e.g. batch size)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self._sum: Any = 0.0
        self.count = 0

    def update(self, value: Any, n: int = 1) -> None:
        """Add ``value``, a per-item mean over ``n`` items (so it weighs ``n`` times)."""
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        if hasattr(value, "detach"):
            value = value.detach()
        self._sum = self._sum + value * n
        self.count += n

    @property
    def sum(self) -> float:
        """Total of ``value * n`` over all updates."""
        return _scalar(self._sum)

    @property
    def avg(self) -> float:
        """Weighted mean; NaN before the first update."""
        return self.sum / self.count if self.count else float("nan")

    def state_dict(self) -> dict[str, float | int]:
        """Plain numbers, safe for ``weights_only`` checkpoints."""
        return {"sum": self.sum, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._sum, self.count = float(state["sum"]), int(state["count"])

    def __repr__(self) -> str:
        return f"AverageMeter(avg={self.avg:.4g}, count={self.count})"


class EpochMeter:
    """Named running averages over one epoch plus images per second.

    ``update(batch_size, loss=..., acc=...)`` weights every value by ``batch_size``. The
    clock starts at construction (or :meth:`reset`); :meth:`state_dict` keeps the elapsed
    time, so a resumed epoch reports the throughput of the whole epoch.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Clear all averages and restart the clock."""
        self.meters: dict[str, AverageMeter] = {}
        self.images = 0
        self._before = 0.0
        self._start = time.perf_counter()

    def update(self, batch_size: int, **values: Any) -> None:
        """Count ``batch_size`` images and add each named per-image mean."""
        self.images += int(batch_size)
        for name, value in values.items():
            self.meters.setdefault(name, AverageMeter()).update(value, batch_size)

    def __getitem__(self, name: str) -> float:
        return self.meters[name].avg

    def __contains__(self, name: str) -> bool:
        return name in self.meters

    @property
    def elapsed(self) -> float:
        """Seconds since the clock started (including time before a resume)."""
        return self._before + time.perf_counter() - self._start

    @property
    def images_per_second(self) -> float:
        """Throughput so far; 0 before any time has passed."""
        seconds = self.elapsed
        return self.images / seconds if seconds > 0 else 0.0

    def averages(self) -> dict[str, float]:
        """Every named average."""
        return {name: meter.avg for name, meter in self.meters.items()}

    def summary(self) -> dict[str, float]:
        """Averages plus ``images``, ``seconds`` and ``images_per_second``."""
        return {**self.averages(), "images": float(self.images), "seconds": self.elapsed,
                "images_per_second": self.images_per_second}

    def state_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint (mid-epoch resume)."""
        return {"meters": {k: m.state_dict() for k, m in self.meters.items()},
                "images": self.images, "seconds": self.elapsed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the clock continues from the saved elapsed time."""
        self.reset()
        for name, meter_state in state.get("meters", {}).items():
            self.meters[name] = AverageMeter()
            self.meters[name].load_state_dict(meter_state)
        self.images = int(state.get("images", 0))
        self._before = float(state.get("seconds", 0.0))
