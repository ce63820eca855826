"""One loop for every task: epochs of steps, resumed mid-epoch, with signals, progress,
checkpoints every N steps and at each epoch's end, and callbacks.

A task (search: the bilevel α/w step; retraining: the objective's step) supplies what
varies (:class:`Task`): its batches, its step, its progress values, its checkpoint and its
end-of-epoch work (validation, the divergence guard's epoch checks, the epoch record to
TensorBoard and history, best-model selection). The loop owns the order of things, so
that both tasks stop, checkpoint and resume the same way:

* SIGINT/SIGTERM (or ``task.request_stop``) finish the current step, checkpoint and raise
  the task's ``interrupted`` error (the CLI exits 130); a signal during the end-of-epoch
  work (minutes on a big split) is honoured at the epoch boundary, also after the last
  epoch, instead of being swallowed.
* A checkpoint every ``task.checkpoint_every`` steps (not at an epoch's last step: the
  epoch's end writes one), and one at each epoch's end.
* ``task.seconds`` is the epoch's training time so far, kept across mid-epoch resumes and
  excluding the time a checkpoint takes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from robustnas import distributed as D
from robustnas.engine.callbacks import Callback
from robustnas.runtime import graceful_stop


@dataclass
class EpochEnd:
    """What a task's end of epoch produced: its record, the checkpoint written, and a reason
    to stop the run now (e.g. the collapse guard's) or None."""

    record: dict[str, Any]
    checkpoint: Path
    stop: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """What the loop needs from a task."""

    epoch: int  #: epochs done
    step: int  #: steps done in the current epoch
    epochs: int
    seconds: float
    dist: D.DistInfo
    device: Any
    run_dir: Path
    show_progress: bool
    checkpoint_every: int
    interrupted: type[Exception]
    stop_reason: str | None

    def steps_per_epoch(self) -> int: ...
    def progress_desc(self) -> str: ...
    def batches(self) -> Iterable[Any]: ...
    def train_step(self, batch: Any) -> None: ...
    def postfix(self) -> dict[str, float]: ...
    def save_checkpoint(self) -> Path: ...
    def end_epoch(self) -> EpochEnd: ...


def run_loop(task: Task, callbacks: Sequence[Callback] = ()) -> str | None:
    """Run ``task`` from its current epoch and step to ``task.epochs``; returns the reason an
    end of epoch stopped the run early, or None. Raises ``task.interrupted`` on a stop."""
    from robustnas.monitor import progress

    for callback in callbacks:
        callback.on_run_start(task)
    stopped: str | None = None
    with graceful_stop() as stop:
        while task.epoch < task.epochs and stopped is None:
            steps = task.steps_per_epoch()
            start = time.perf_counter() - task.seconds
            with progress(steps, desc=task.progress_desc(),
                          enabled=task.show_progress and task.dist.is_main,
                          initial=task.step) as bar:
                batches: Iterator[Any] = iter(task.batches())
                for batch in batches:
                    if task.step >= steps:
                        break
                    task.train_step(batch)
                    task.step += 1
                    task.seconds = time.perf_counter() - start
                    bar.update(1, **task.postfix())
                    for callback in callbacks:
                        callback.on_step_end(task)
                    if _stop_requested(task, stop):
                        _interrupted(task, stop, task.save_checkpoint())
                    every = task.checkpoint_every
                    if every and task.step % every == 0 and task.step < steps:
                        task.save_checkpoint()
                        start = time.perf_counter() - task.seconds
            end = task.end_epoch()
            for callback in callbacks:
                callback.on_epoch_end(task, end.record)
            stopped = end.stop
            # A signal that arrived during the end-of-epoch work is honoured here (a stop of
            # the epoch's own, e.g. the collapse guard's, ends the run anyway: not resumed).
            if stopped is None and _stop_requested(task, stop):
                _interrupted(task, stop, end.checkpoint)
    if stopped is None:
        for callback in callbacks:
            callback.on_run_end(task)
    return stopped


def _stop_requested(task: Task, stop: Any) -> bool:
    """A signal here or on another process, or a callback's request (collective)."""
    return D.any_process(bool(stop) or task.stop_reason is not None, task.dist, task.device)


def _interrupted(task: Task, stop: Any, path: Path) -> None:
    """Raise the task's interruption error on every process, once ``path`` is written."""
    D.barrier(task.dist)
    where = (f"in epoch {task.epoch + 1}, step {task.step}" if task.step
             else f"after epoch {task.epoch}")
    if stop.signum is not None:
        cause = f"by signal {stop.signum}"
    elif task.stop_reason is not None:
        cause = f"by a callback ({task.stop_reason})"
    else:
        cause = "by signal on another process"
    raise task.interrupted(
        f"stopped {cause} {where}; checkpoint saved to {path}; continue with --resume "
        f"--out {task.run_dir}")
