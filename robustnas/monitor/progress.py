"""Terminal progress bars (tqdm on stderr) that can be switched off without a trace.

Typical use in a training loop::

    with progress(len(loader), desc=f"epoch {e}") as bar:
        for x, y in loader.epoch(e):
            ...
            bar.update(loss=meter["loss"], acc=meter["acc"])

The bar shows count, rate and ETA. When stderr is not a terminal (a log file, a batch
job) it redraws at most every ``log_interval`` seconds, so logs stay short.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "detach") and getattr(value, "numel", lambda: 0)() == 1:
        return f"{float(value.detach().item()):.4g}"
    return str(value)


class Progress:
    """A progress bar over ``total`` steps; with ``enabled=False`` it does and prints nothing."""

    def __init__(self, total: int | None, desc: str = "", enabled: bool = True,
                 initial: int = 0, unit: str = "it", log_interval: float = 30.0) -> None:
        self.enabled = bool(enabled)
        self.n = int(initial)
        self.total = total
        self._bar: Any = None
        if self.enabled:
            from tqdm import tqdm

            stream = sys.stderr  # looked up now, so redirected/captured stderr is honoured
            interactive = bool(getattr(stream, "isatty", lambda: False)())
            self._bar = tqdm(total=total, desc=desc, initial=int(initial), unit=unit,
                             file=stream, dynamic_ncols=True, leave=True, smoothing=0.1,
                             mininterval=0.2 if interactive else log_interval)

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Advance by ``n`` steps; keyword values (loss=..., acc=...) are shown after the bar."""
        self.n += n
        if self._bar is None:
            return
        if postfix:
            self._bar.set_postfix_str(self._postfix(postfix), refresh=False)
        self._bar.update(n)

    def set_postfix(self, **postfix: Any) -> None:
        """Replace the values shown after the bar and redraw it."""
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(postfix), refresh=True)

    def write(self, message: str) -> None:
        """Print a line to stderr without garbling the bar (nothing when disabled)."""
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)

    def close(self) -> None:
        """Draw the final state and release the line; safe to call twice."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()

    @staticmethod
    def _postfix(values: dict[str, Any]) -> str:
        return ", ".join(f"{key}={_format(value)}" for key, value in values.items())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def progress(total: int | None, desc: str = "", enabled: bool = True, initial: int = 0,
             unit: str = "it") -> Progress:
    """A :class:`Progress` bar on stderr; ``initial`` > 0 resumes a partly done epoch."""
    return Progress(total, desc, enabled=enabled, initial=initial, unit=unit)
