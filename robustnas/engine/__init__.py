"""The training engine shared by search and retraining: one loop (:mod:`.loop`) over the
steps of a task, with user callbacks (:mod:`.callbacks`)."""

from robustnas.engine.callbacks import Callback, StepCallback, on_step
from robustnas.engine.loop import EpochEnd, Task, run_loop

__all__ = ["Callback", "EpochEnd", "StepCallback", "Task", "on_step", "run_loop"]
