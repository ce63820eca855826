"""The search loop: bilevel DARTS optimisation with regularisers, logging, checkpoints, resume.

Each step takes an α step on a validation batch (after the warm-up), then a weight step
on a training batch. At the end of each epoch the genotype is derived and logged, and an
atomic checkpoint holding everything needed to continue is written. SIGINT/SIGTERM
checkpoint at the next step boundary (mid-epoch), or at the epoch's end when they arrive
during the end-of-epoch work (also the last epoch's), before stopping
(:class:`SearchInterrupted`; the CLI exits 130), and ``resume``
continues from the last checkpoint; on CPU the result is identical to an uninterrupted run.
Under ``torchrun`` the global batch is sharded over processes and gradients are averaged
(:mod:`robustnas.search.parallel`); only rank 0 writes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustnas.config import save_config
from robustnas.engine import Callback, EpochEnd, run_loop
from robustnas.engine.session import RunSession
from robustnas.engine.task import EngineTask
from robustnas.errors import RobustnasError, UsageError
from robustnas.resume import checkpoint_counters
from robustnas.runtime import (
    PRECISIONS,
    autocast_factory,
    default_dtype,
    seed_everything,
    set_threads,
)
from robustnas.search.alpha_objective import build_alpha_attack
from robustnas.search.architect import Architect, weight_step
from robustnas.search.checkpointing import restore_search_checkpoint, save_search_checkpoint
from robustnas.search.config import SearchConfig
from robustnas.search.data import load_search_data
from robustnas.search.epoch_end import end_search_epoch
from robustnas.search.epoch_log import EpochLogger
from robustnas.search.finish import finish_search
from robustnas.search.guard import search_divergence_guard
from robustnas.search.objective import RegularizerSet
from robustnas.search.parallel import (
    add_step_sums,
    gradient_averager,
    prepare_supernet,
)
from robustnas.search.result import SearchResult
from robustnas.search.resume import apply_optimizer_settings
from robustnas.search.setup import build_optimizers, build_supernet
from robustnas.search.state import CHECKPOINT_NAME, load_search_state
from robustnas.search.validation import evaluate_supernet
from robustnas.search.weight_objective import build_weight_objective


class SearchInterrupted(RobustnasError):
    """The search stopped on a signal after writing a checkpoint."""


class Searcher(EngineTask):
    """Runs one search. Build with a resolved :class:`SearchConfig`; call :meth:`run`."""

    def __init__(self, config: SearchConfig, *, show_progress: bool = True,
                 resume: bool = False, overwrite: bool = False,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.init_task(callbacks)
        self.session = RunSession(config.device)
        self.dist, self.device = self.session.dist, self.session.device
        try:
            with default_dtype(config.precision):
                self._build(show_progress, resume, overwrite)
        except BaseException:
            self.close()
            raise

    def _build(self, show_progress: bool, resume: bool, overwrite: bool) -> None:
        config, info = self.config, self.dist
        self.run_dir = Path(config.out)
        self.checkpoint_path = self.run_dir / CHECKPOINT_NAME
        # --resume without a checkpoint (killed before the first one) starts from scratch.
        scratch = resume and not self.checkpoint_path.exists()
        resume = resume and not scratch
        # before any work: refuse a busy or occupied --out
        self.run_dir = self.session.check_out(config.out, resume=resume,
                                              overwrite=overwrite or scratch)
        if config.batch_size % info.world_size:
            raise UsageError(f"batch_size {config.batch_size} is the global batch and must be "
                             f"divisible by the {info.world_size} processes")
        config.world_size = info.world_size
        self.show_progress = show_progress and info.is_main
        self.threads = set_threads(config.threads)
        self.autocast = autocast_factory(self.device, config.amp)
        self.w_objective = build_weight_objective(config.w_objective,
                                                  config.w_objective_options, self.autocast)
        self.alpha_attack = build_alpha_attack(config.alpha_objective, config.w_objective,
                                               config.w_objective_options, self.autocast)
        self.regularizers = RegularizerSet(config.regularizer, config.regularizer_options)
        self.regularizers.check_schedule(config.epochs, config.warmup_epochs)
        seed_everything(config.seed)
        self.data = load_search_data(config, self.device, info)
        model = build_supernet(config, self.data)
        self.regularizers.setup(model)
        model.to(self.device, PRECISIONS[config.precision])
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = prepare_supernet(model, info, config.sync_bn)
        self.average = gradient_averager(info)
        self.criterion = nn.CrossEntropyLoss()
        self.w_optimizer, self.scheduler, self.arch_optimizer = build_optimizers(config,
                                                                                 self.model)
        self.architect = Architect(self.model, self.arch_optimizer, self.w_optimizer,
                                   self.regularizers, self.criterion, order=config.order,
                                   autocast=self.autocast, fd_radius=config.fd_radius,
                                   average=self.average)
        self.guard = search_divergence_guard(self)
        # A damaged or forged checkpoint (epoch 2**70, step -5) is refused before anything
        # is written to the run directory.
        state = load_search_state(self.checkpoint_path) if resume else None
        if state is not None:
            checkpoint_counters(state, epochs=config.epochs,
                                steps_per_epoch=self._steps_per_epoch(),
                                source=f"checkpoint {self.checkpoint_path}")
        self.session.open(self.run_dir, resume=resume, overwrite=overwrite or scratch)
        self.log = EpochLogger(self.run_dir, self.model, config, self.regularizers,
                               enabled=info.is_main)
        self.monitors = self.log.monitors()
        self.last_genotype: Any = None  # derived at each epoch's end, for the monitors
        self.epoch, self.step = 0, 0
        self.meters: dict[str, float] = {}
        self.val_images = 0  # images of the last validation (capped smoke runs: fewer)
        self.history: list[dict[str, Any]] = []
        if state is not None:
            restore_search_checkpoint(self, state)
            apply_optimizer_settings(config, self.w_optimizer, self.scheduler,
                                     self.arch_optimizer)
            saved_world = int(state.get("world_size", 1))
            if saved_world != info.world_size and info.is_main:
                print(f"resume: the run used {saved_world} process(es), now "
                      f"{info.world_size}: the global batch is unchanged, its shards differ "
                      f"(equal to floating-point rounding)", file=sys.stderr, flush=True)
        if info.is_main:
            save_config(config, self.run_dir / "config.yaml")

    def close(self) -> None:
        """Release the run directory (its lock) and leave the process group (torchrun);
        :meth:`run` does this when it ends."""
        self.session.close()

    # -- checkpointing -----------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Atomically write the current state to ``<run_dir>/checkpoint.pt`` (rank 0)."""
        return save_search_checkpoint(self)

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> SearchResult:
        """Search until ``config.epochs``; returns the derived genotype and where it is."""
        try:
            with default_dtype(self.config.precision):
                stopped_early = run_loop(self, self.callbacks)
                # After the loop: a signal while the genotype is written takes its default
                # action.
                result = self._finish(stopped_early)
            self.session.finished()
            return result
        finally:
            self.close()

    # -- what the engine's loop asks of the search (robustnas.engine.loop.Task) -----------
    interrupted = SearchInterrupted

    @property
    def seconds(self) -> float:
        """The epoch's training time so far (a meter: resumed with the epoch's sums)."""
        return self.meters.get("seconds", 0.0)

    @seconds.setter
    def seconds(self, value: float) -> None:
        self.meters["seconds"] = value

    def progress_desc(self) -> str:  # noqa: D102
        return f"search {self.epoch + 1}/{self.config.epochs}"

    def batches(self) -> Iterator[tuple[Any, Any]]:
        """Pairs of (training, validation) batches of the epoch from the current step."""
        return zip(self.data.train.epoch(self.epoch, start=self.step),
                   self.data.val.epoch(self.epoch, start=self.step))

    def train_step(self, batch: tuple[Any, Any]) -> None:  # noqa: D102
        (x_t, y_t), (x_v, y_v) = batch
        self._train_step(x_t, y_t, x_v, y_v)

    def postfix(self) -> dict[str, float]:  # noqa: D102
        return {"loss": self.meters["loss"] / self.meters["n"],
                "acc": self.meters["correct"] / self.meters["n"]}

    def end_epoch(self) -> EpochEnd:
        """Validation, the epoch record and the derived genotype, then the checkpoint."""
        stopped = self._end_epoch()
        return EpochEnd(self.history[-1], self.save_checkpoint(), stopped)

    def steps_per_epoch(self) -> int:  # noqa: D102
        return self._steps_per_epoch()

    def _steps_per_epoch(self) -> int:
        steps = min(len(self.data.train), len(self.data.val))
        if self.config.max_steps_per_epoch > 0:
            steps = min(steps, self.config.max_steps_per_epoch)
        return steps

    def _train_step(self, x_t: torch.Tensor, y_t: torch.Tensor, x_v: torch.Tensor,
                    y_v: torch.Tensor) -> None:
        config = self.config
        if config.channels_last:
            x_t = x_t.contiguous(memory_format=torch.channels_last)
            x_v = x_v.contiguous(memory_format=torch.channels_last)
        lr = self.scheduler.get_last_lr()[0]
        self.model.train()
        self.guard.begin_step(self.epoch, self.step, (self.model,))
        logs: dict[str, float] = {}
        if self.epoch >= config.warmup_epochs:
            if self.alpha_attack is not None:
                x_v = self.alpha_attack(self.model, x_v, y_v)
            logs = self.architect.step(x_t, y_t, x_v, y_v, lr, self.epoch, self.step,
                                       config.epochs)
        logits, loss, w_logs = weight_step(self.model, self.w_optimizer, x_t, y_t,
                                           self.criterion, config.grad_clip, self.regularizers,
                                           self.epoch, self.step, config.epochs, self.autocast,
                                           average=self.average, objective=self.w_objective)
        logs.update(w_logs)
        if not self.guard.end_step(self._guarded, (self.model,)):
            return  # a skipped step (skip_nonfinite) stays out of the epoch's averages
        add_step_sums(self.meters, y_t, logits, loss, logs)

    def evaluate_val(self) -> tuple[float, float]:
        """Loss and accuracy of the supernet on the validation split
        (:func:`robustnas.search.validation.evaluate_supernet`)."""
        return evaluate_supernet(self)

    def _end_epoch(self) -> str | None:
        return end_search_epoch(self)

    def _finish(self, stopped_early: str | None) -> SearchResult:
        return finish_search(self, stopped_early)
