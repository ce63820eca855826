"""Callbacks: user code the engine calls at fixed points of a run (as Lightning's callbacks).

Subclass :class:`Callback` and override the hooks you need; pass a list as ``callbacks=`` to
:func:`robustnas.search.run_search` or :func:`robustnas.train.retrain`. A hook receives the
running task (a :class:`~robustnas.search.searcher.Searcher` or a
:class:`~robustnas.train.trainer.Trainer`: ``epoch``, ``step`` (steps done in the epoch),
``model``, ``history``, ...). To stop a run from a hook call ``task.request_stop(reason)``:
the engine checkpoints after the step and raises the task's interruption error, as for a
signal, so ``--resume`` continues it; an exception raised by a hook ends the run at once
(without a checkpoint of that step). The tasks' own end-of-epoch monitors (the search's
TensorBoard curves, Hessian probe, pictures and collapse guard) are callbacks of the same
kind, run before the user's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Callback:
    """Hooks of one callback; each does nothing unless overridden."""

    def on_run_start(self, task: Any) -> None:
        """Before the first step of this process's run (also a resumed one)."""

    def on_step_end(self, task: Any) -> None:
        """After each training step (``task.step`` already counts it)."""

    def on_epoch_record(self, task: Any, record: dict[str, Any]) -> None:
        """During an epoch's end, on rank 0, before its checkpoint and history row are
        written: add keys to ``record`` (they are saved with it), log, draw; call
        ``task.finish_early(reason)`` to end the run after this epoch as complete (the
        collapse guard does), not resumable past it."""

    def on_epoch_end(self, task: Any, record: dict[str, Any]) -> None:
        """After an epoch's end-of-epoch work and checkpoint; ``record`` is its history row."""

    def on_run_end(self, task: Any) -> None:
        """After the last epoch (not after a stop, a crash or a divergence)."""


StepCallback = Callable[[Any], None]


class _OnStep(Callback):
    def __init__(self, fn: StepCallback) -> None:
        self.fn = fn

    def on_step_end(self, task: Any) -> None:
        self.fn(task)


def on_step(fn: StepCallback) -> Callback:
    """A callback calling ``fn(task)`` after every step."""
    return _OnStep(fn)
