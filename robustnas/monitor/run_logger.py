"""A small TensorBoard writer for one run directory that can be switched off entirely."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from robustnas.errors import UsageError


def _to_float(value: Any) -> float:
    if hasattr(value, "detach"):
        value = value.detach()
        if value.numel() != 1:
            raise UsageError(f"a scalar needs one value, got a tensor of shape "
                             f"{tuple(value.shape)}")
        return float(value.item())
    return float(value)


def _to_image(image: Any) -> np.ndarray:
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or 0 in arr.shape:
        raise UsageError(f"an image must be H x W x C with C in 1, 3, 4; got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise UsageError(f"an image must be uint8, got {arr.dtype}")
    return arr


class RunLogger:
    """TensorBoard event files for one run (``SummaryWriter`` under the hood).

    With ``enabled=False`` (e.g. DDP ranks other than 0) every method is a no-op and no file
    or directory is created. After :meth:`close` further calls are ignored as well, so a
    late log line can never crash a finished run. Use as a context manager to close it.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True, flush_secs: int = 30) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = bool(enabled)
        self._writer: Any = None
        if self.enabled:
            from robustnas.io import ensure_writable_dir

            ensure_writable_dir(self.run_dir)
            # Imported here: tensorboard costs about a second and most imports never log.
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir), flush_secs=flush_secs)

    @property
    def active(self) -> bool:
        """True while calls reach an open event file."""
        return self._writer is not None

    def scalar(self, tag: str, value: Any, step: int) -> None:
        """Log one number (float, int, or a one-element tensor) at ``step``."""
        if self._writer is None:
            return
        self._writer.add_scalar(tag, _to_float(value), int(step))

    def scalars(self, values: Mapping[str, Any], step: int, prefix: str = "") -> None:
        """Log each ``name: number`` of ``values`` as ``prefix/name``; ``None`` values are skipped.

        A prefix that already ends in ``/`` is used as given.
        """
        if self._writer is None:
            return
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        for name, value in values.items():
            if value is not None:
                self.scalar(f"{prefix}{name}", value, step)

    def image(self, tag: str, image: Any, step: int) -> None:
        """Log an ``H x W x C`` uint8 image (array or tensor; C = 1, 3 or 4)."""
        if self._writer is None:
            return
        self._writer.add_image(tag, _to_image(image), int(step), dataformats="HWC")

    def text(self, tag: str, text: str, step: int) -> None:
        """Log a piece of text (TensorBoard renders it as Markdown)."""
        if self._writer is None:
            return
        self._writer.add_text(tag, str(text), int(step))

    def flush(self) -> None:
        """Push pending events to disk."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file; later calls do nothing."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.active else ("closed" if self.enabled else "disabled")
        return f"RunLogger({str(self.run_dir)!r}, {state})"

