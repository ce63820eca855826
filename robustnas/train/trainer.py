"""The retraining loop: objectives, schedules, held-out evaluation, checkpoints and resume.

One epoch walks the training split in deterministic batches (a function of seed, epoch and
batch index), applies the objective's loss, clips the gradient norm and takes an SGD step.
``last.pt`` is written every ``checkpoint_every`` steps, at every epoch end, and when a
SIGINT/SIGTERM arrives (the current step is finished first, then the run stops with
:class:`TrainingInterrupted`). ``best.pt`` follows the held-out metric chosen by
``best_by``. A run resumed from ``last.pt`` continues exactly: on the CPU its final weights
are bit-identical to those of an uninterrupted run.

Under ``torchrun`` the model is wrapped in DistributedDataParallel (see
:mod:`robustnas.distributed`); every process runs this loop on its shard of each
global batch, and rank 0 writes the logs, checkpoints and summary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustnas import distributed as D
from robustnas.engine import Callback, EpochEnd, run_loop
from robustnas.engine.session import RunSession, is_refusal
from robustnas.engine.task import EngineTask
from robustnas.errors import (
    RobustnasError,
    UsageError,
)
from robustnas.runtime import (
    autocast_factory,
    rng_state,
    seed_everything,
    set_threads,
)
from robustnas.space.complexity import count_parameters
from robustnas.space.models import (
    model_from_payload,
    model_genotype,
)
from robustnas.train.checkpointing import restore_train_checkpoint, train_state
from robustnas.train.config import RetrainConfig
from robustnas.train.epoch_end import end_train_epoch
from robustnas.train.epoch_log import EpochCurves
from robustnas.train.heldout import evaluate_heldout
from robustnas.train.meters import accumulate, progress_values
from robustnas.train.objectives import OBJECTIVES, unwrap
from robustnas.train.result import RetrainResult
from robustnas.train.setup import (
    build_network,
    build_optimizer,
    build_scheduler,
    drop_path_at,
    load_data,
    place_network,
    wrap_parallel,
)
from robustnas.train.start import genotype_to_build, retrain_divergence_guard, start_run_files
from robustnas.train.state import LAST_NAME, save_train_state
from robustnas.train.summary import finish_run, run_summary


#: Errors that refuse a run for its input (see :meth:`Trainer._is_refusal`).
class TrainingInterrupted(RobustnasError):
    """The run stopped on a signal after writing ``last.pt``."""


class Trainer(EngineTask):
    """Runs one retraining. Build with a resolved :class:`RetrainConfig`; call :meth:`run`.

    ``resume_state`` is a loaded ``last.pt`` to continue from; ``callbacks``
    (:class:`robustnas.engine.Callback`) are called during the run.
    """

    def __init__(self, config: RetrainConfig, *, resume_state: dict[str, Any] | None = None,
                 show_progress: bool = True, callbacks: Sequence[Callback] = (),
                 overwrite: bool = False) -> None:
        self.config = config
        self.show_progress = show_progress
        self.init_task(callbacks)
        self.overwrite = overwrite  # replace a run already in config.out
        self.resumed = resume_state is not None
        self.checkpointed = False  # whether this run has written a checkpoint yet
        self.session = RunSession(config.device)
        self.dist, self.device = self.session.dist, self.session.device
        try:  # before any work: refuse a busy, occupied or bad --out
            self.session.check_out(config.out, resume=self.resumed, overwrite=overwrite)
            self._build(resume_state)
        except BaseException as exc:
            log = getattr(self, "log", None)
            if log is not None:  # its event file must be closed before it can be removed
                log.close()
            self.session.close(discard=self._is_refusal(exc))
            raise

    def _is_refusal(self, exc: BaseException) -> bool:
        return is_refusal(exc, resumed=self.resumed, checkpointed=self.checkpointed)

    # -- construction ------------------------------------------------------------------
    def _build(self, resume_state: dict[str, Any] | None) -> None:
        config, device = self.config, self.device
        self.threads = set_threads(config.threads)
        self.autocast = autocast_factory(device, config.amp)
        self.objective = OBJECTIVES.get(config.adversarial)(config.objective_settings(),
                                                            self.autocast)
        genotype = genotype_to_build(config, resume_state)
        self.data = load_data(config, device, self.dist)
        if config.cutout is None:  # not set: record the value used for these images
            config = self.config = dataclasses.replace(config, cutout=self.data.cutout)
        self.steps_per_epoch_count = len(self.data.train)
        if config.max_steps_per_epoch > 0:
            self.steps_per_epoch_count = min(self.steps_per_epoch_count,
                                             config.max_steps_per_epoch)
        if self.steps_per_epoch_count < 1:
            raise UsageError("the training split yields no full batch; lower batch_size")
        self.run_dir = Path(config.out)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        seed_everything(config.seed)
        if resume_state is not None:
            net = model_from_payload(resume_state["model"], source="last.pt")
        else:
            net = build_network(config, genotype, self.data)
        self.genotype: Any | None = model_genotype(net)  # None: hand-crafted, ensemble
        self.num_parameters = count_parameters(net)
        net = place_network(config, net, self.dist, device)
        self.net = net
        self.optimizer = build_optimizer(config, net)
        self.scheduler = build_scheduler(config, self.optimizer)
        self.epoch, self.step = 0, 0
        self.seconds = 0.0
        self.meters: dict[str, torch.Tensor] = {}
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"metric": config.best_by, "value": None, "epoch": None}
        self.metrics: dict[str, float] = {}
        self.steps_done = 0
        if resume_state is not None:
            restore_train_checkpoint(self, resume_state)
        elif self.dist.rank > 0:
            # Distinct streams per process for drop-path and random starts (the weights were
            # initialised identically above; DDP broadcasts rank 0's anyway).
            seed_everything(config.seed + 7919 * self.dist.rank)
        self.model: nn.Module = wrap_parallel(net, self.dist, device)
        self.guard = retrain_divergence_guard(self)
        self.log = start_run_files(self, net, resumed=resume_state is not None)

    # -- checkpoints -------------------------------------------------------------------
    def save(self, *names: str) -> Path:
        """Write ``last.pt`` (and the other ``names``) from rank 0; collective under DDP."""
        rng_all = D.gather_objects(rng_state(), self.dist)
        path = self.run_dir / LAST_NAME
        if self.dist.is_main:
            state = train_state(self, rng_all)
            for name in names or (LAST_NAME,):
                save_train_state(self.run_dir / name, state)
        self.checkpointed = True
        return path

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> RetrainResult:
        """Train until ``config.epochs``; returns where the results are.

        A new run refused before its first checkpoint leaves nothing behind in ``out``.
        """
        refused = False
        try:
            run_loop(self, [EpochCurves(self.log), *self.callbacks])
            result = self._finish()
            self.session.finished()  # ("terminate called without an active exception")
            return result
        except RobustnasError as exc:
            refused = self._is_refusal(exc)
            raise
        finally:
            self.log.close()
            self.session.close(discard=refused)

    # -- what the engine's loop asks of retraining (robustnas.engine.loop.Task) ----------
    interrupted = TrainingInterrupted

    def steps_per_epoch(self) -> int:  # noqa: D102
        return self.steps_per_epoch_count

    def progress_desc(self) -> str:  # noqa: D102
        return f"{self.config.adversarial} {self.epoch + 1}/{self.config.epochs}"

    def batches(self) -> Any:
        """The epoch's training batches from the current step (drop-path set for the epoch)."""
        unwrap(self.model).drop_path_prob = drop_path_at(self.config, self.epoch)
        return self.data.train.epoch(self.epoch, start=self.step)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:  # noqa: D102
        self._train_step(*batch)
        self.steps_done += 1

    def save_checkpoint(self) -> Path:  # noqa: D102
        return self.save()

    def end_epoch(self) -> EpochEnd:
        """Held-out evaluation, best-model selection, the epoch record and the checkpoints."""
        self._end_epoch()
        return EpochEnd(self.history[-1], self.run_dir / LAST_NAME, self.finish_reason)

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        config = self.config
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.model.train()
        self.guard.begin_step(self.epoch, self.step, (self.net,))
        out = self.objective.compute(self.model, x, y)
        self.guard.record_loss(out.loss, "training loss")
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        if self.guard.end_step({"weights": self.net.named_parameters()}, (self.net,)):
            accumulate(self, out, y)

    def evaluate(self) -> dict[str, float]:
        """Clean and PGD accuracy on the selection split (all processes take part)."""
        c = self.config
        return evaluate_heldout(
            self.net, self.data.eval_x, self.data.eval_y, eps=c.eval_eps,
            step_size=c.eval_step_size, steps=c.eval_steps, batch_size=c.eval_batch_size,
            device=self.device, seed=c.seed, epoch=self.epoch, autocast=self.autocast,
            channels_last=c.channels_last, dist_info=self.dist)

    def _end_epoch(self) -> None:
        end_train_epoch(self)

    def postfix(self) -> dict[str, float]:  # noqa: D102
        return progress_values(self)

    def summary(self, finished: bool) -> dict[str, Any]:
        """The run's final/best metrics as plain data (what ``summary.json`` holds)."""
        return run_summary(self, finished)

    def _finish(self) -> RetrainResult:
        return finish_run(self)
