"""What search and retraining share as tasks of the engine: their settings' epochs and
checkpoint interval, the callbacks, a callback's stop request and an early finish."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from robustnas.engine.callbacks import Callback


class EngineTask:
    """Base of the engine's tasks (:class:`robustnas.engine.loop.Task`): ``config`` has
    ``epochs`` and ``checkpoint_every``."""

    config: Any

    def init_task(self, callbacks: Sequence[Callback]) -> None:
        """Set the callbacks and clear any stop request (call first in ``__init__``)."""
        self.callbacks = list(callbacks)
        self.stop_reason: str | None = None
        self.finish_reason: str | None = None

    @property
    def epochs(self) -> int:
        """Epochs the run trains for."""
        return self.config.epochs

    @property
    def checkpoint_every(self) -> int:
        """Steps between mid-epoch checkpoints (0: only at epoch ends)."""
        return self.config.checkpoint_every

    def request_stop(self, reason: str) -> None:
        """Stop after this step with a checkpoint (see :mod:`robustnas.engine.callbacks`)."""
        self.stop_reason = reason

    def finish_early(self, reason: str) -> None:
        """End the run after this epoch's end as complete (see
        :meth:`robustnas.engine.Callback.on_epoch_record`)."""
        self.finish_reason = reason
