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

import contextlib
import itertools
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustnas import distributed as D
from robustnas.config import config_to_dict, resolve_config, save_config
from robustnas.divergence import DivergenceGuard, split_parameters
from robustnas.engine import Callback, EpochEnd, run_loop
from robustnas.errors import RobustnasError, UsageError
from robustnas.io import check_writable_dir, ensure_writable_dir
from robustnas.monitor.history import write_history
from robustnas.resume import checkpoint_counters, explicit_settings
from robustnas.rundir import check_run_dir, open_run_dir
from robustnas.runtime import (
    autocast_factory,
    rng_state,
    seed_everything,
    set_rng_state,
    set_threads,
)
from robustnas.search.architect import Architect, weight_step
from robustnas.search.config import SearchConfig
from robustnas.search.epoch_log import EpochLogger
from robustnas.search.export import export_genotype, provenance
from robustnas.search.objective import RegularizerSet
from robustnas.search.parallel import (
    average_running_statistics,
    check_ranks_agree,
    gradient_averager,
    prepare_supernet,
    reduce_meters,
    reduce_saved_meters,
)
from robustnas.search.resume import apply_optimizer_settings, resumed_search_config
from robustnas.search.state import CHECKPOINT_NAME, load_search_state, save_search_state
from robustnas.space.decisiveness import UniformGenotypeWarning
from robustnas.space.models import model_payload
from robustnas.space.spaces import space_of_genotype


class SearchInterrupted(RobustnasError):
    """The search stopped on a signal after writing a checkpoint."""


@dataclass
class SearchResult:
    """What a finished search leaves behind."""

    run_dir: Path
    genotype: Any
    genotype_path: Path
    pictures: list[Path]
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: str | None = None
    rank: int = 0  #: this process's rank under torchrun (only rank 0 wrote the files)

    @property
    def decisiveness(self) -> dict[str, Any] | None:
        """How clearly α chose the cell: the genotype's provenance record (verdict
        ``uniform``/``weak``/``clear``, margins, entropy; :mod:`robustnas.space.decisiveness`),
        None for a genotype that has none."""
        record = self.genotype.provenance.get("decisiveness")
        return dict(record) if record else None

    @property
    def decisiveness_warning(self) -> str | None:
        """The "its operations are noise" sentence when the verdict is ``uniform``."""
        from robustnas.space.decisiveness import describe

        record = self.decisiveness
        return describe(record)[1] if record else None


@dataclass
class _Data:
    train: Any
    val: Any
    val_eval: Any
    val_probe: Any  # the unsharded validation split, for rank 0's end-of-epoch probes
    num_classes: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _load_data(config: SearchConfig, device: torch.device, info: D.DistInfo) -> _Data:
    from robustnas.data import DeviceLoader, default_augment, load_dataset, search_split

    ds = load_dataset(config.dataset, root=config.data_root, download=config.download,
                      **config.dataset_options)
    train_x, train_y, val_x, val_y = search_split(ds, portion=config.train_portion,
                                                  seed=config.seed)
    augment = default_augment(ds) if config.augment else None
    if min(len(train_y), len(val_y)) < config.batch_size:
        raise UsageError(f"batch_size {config.batch_size} is larger than the search split "
                         f"({min(len(train_y), len(val_y))} images)")

    shards = dict(num_shards=info.world_size, shard_index=info.rank)

    def loader(x: torch.Tensor, y: torch.Tensor, seed: int) -> Any:
        return DeviceLoader(x, y, config.batch_size, shuffle=True, augment=augment, seed=seed,
                            drop_last=True, device=device, **shards)

    def in_order(**sharding: int) -> Any:
        return DeviceLoader(val_x, val_y, config.batch_size, shuffle=False, augment=None,
                            drop_last=False, device=device, **sharding)

    val_eval = in_order(**shards)
    val_probe = in_order() if info.enabled else val_eval
    return _Data(loader(train_x, train_y, config.seed), loader(val_x, val_y, config.seed + 1),
                 val_eval, val_probe, ds.num_classes, ds.in_channels, tuple(ds.mean),
                 tuple(ds.std))


class Searcher:
    """Runs one search. Build with a resolved :class:`SearchConfig`; call :meth:`run`."""

    def __init__(self, config: SearchConfig, *, show_progress: bool = True,
                 resume: bool = False, overwrite: bool = False,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.stop_reason: str | None = None
        self.rundir: Any = None  # the locked run directory (rank 0)
        # Under torchrun: join the process group, one device per process (else a no-op).
        self.dist, self.device = D.setup_distributed(config.device)
        try:
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
        refused: RobustnasError | None = None
        if info.is_main:  # before any work: refuse a busy or occupied --out
            try:
                self.run_dir = check_writable_dir(config.out)
                check_run_dir(self.run_dir, resume=resume, overwrite=overwrite or scratch)
            except RobustnasError as exc:
                refused = exc
        if info.enabled:  # the other processes stop too, instead of waiting for rank 0
            message = D.broadcast_object(None if refused is None else str(refused), info)
            if message is not None and refused is None:
                raise UsageError(f"rank 0 refused to start: {message}")
        if refused is not None:
            raise refused
        if config.batch_size % info.world_size:
            raise UsageError(f"batch_size {config.batch_size} is the global batch and must be "
                             f"divisible by the {info.world_size} processes")
        config.world_size = info.world_size
        self.show_progress = show_progress and info.is_main
        self.threads = set_threads(config.threads)
        self.autocast = autocast_factory(self.device, config.amp)
        self.regularizers = RegularizerSet(config.regularizer, config.regularizer_options)
        seed_everything(config.seed)
        self.data = _load_data(config, self.device, info)
        from robustnas.space.spaces import get_space

        model = get_space(config.space).supernet(
            C=config.C, num_classes=self.data.num_classes, layers=config.layers,
            steps=config.steps, in_channels=self.data.in_channels, mean=self.data.mean,
            std=self.data.std)
        self.regularizers.setup(model)
        model.to(self.device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = prepare_supernet(model, info, config.sync_bn)
        self.average = gradient_averager(info)
        self.criterion = nn.CrossEntropyLoss()
        self.w_optimizer = torch.optim.SGD(self.model.weights(), lr=config.w_lr,
                                           momentum=config.w_momentum,
                                           weight_decay=config.w_weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=config.epochs, eta_min=config.w_lr_min)
        self.arch_optimizer = torch.optim.Adam(
            self.model.arch_parameters(), lr=config.arch_lr,
            betas=(config.arch_beta1, config.arch_beta2), weight_decay=config.arch_weight_decay)
        self.architect = Architect(self.model, self.arch_optimizer, self.w_optimizer,
                                   self.regularizers, self.criterion, order=config.order,
                                   autocast=self.autocast, fd_radius=config.fd_radius,
                                   average=self.average)
        self.guard = _divergence_guard(self)
        # A damaged or forged checkpoint (epoch 2**70, step -5) is refused before anything
        # is written to the run directory.
        state = load_search_state(self.checkpoint_path) if resume else None
        if state is not None:
            checkpoint_counters(state, epochs=config.epochs,
                                steps_per_epoch=self._steps_per_epoch(),
                                source=f"checkpoint {self.checkpoint_path}")
        if info.is_main:
            self.rundir = open_run_dir(self.run_dir, resume=resume,
                                       overwrite=overwrite or scratch)
            ensure_writable_dir(self.run_dir)
        self.log = EpochLogger(self.run_dir, self.model, config, self.regularizers,
                               enabled=info.is_main)
        self.epoch, self.step = 0, 0
        self.meters: dict[str, float] = {}
        self.val_images = 0  # images of the last validation (capped smoke runs: fewer)
        self.history: list[dict[str, Any]] = []
        if state is not None:
            self._restore(state)
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
        if self.rundir is not None:
            self.rundir.close()
            self.rundir = None
        D.teardown_distributed(self.dist)

    # -- checkpointing -----------------------------------------------------------------
    def _state(self, per_rank: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": model_payload(self.model),
            "config": config_to_dict(self.config),
            "dataset": {"name": self.config.dataset, "root": self.config.data_root},
            "epoch": self.epoch, "step": self.step, "meters": dict(self.meters),
            "w_optimizer": self.w_optimizer.state_dict(),
            "arch_optimizer": self.arch_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "regularizers": self.regularizers.state_dict(),
            "monitor": self.log.state_dict(),
            "rng": rng_state(),  # the same on every process (see search.parallel)
            # Each process's own running sums of the epoch so far (its shard's loss and
            # accuracy) and RNG: restored per rank, so that a resumed torchrun run logs the
            # epoch an uninterrupted one logs (rank 0's sums alone counted them twice).
            "per_rank": per_rank,
            "history": self.history,
            "world_size": self.dist.world_size,
        }

    def save_checkpoint(self) -> Path:
        """Atomically write the current state to ``<run_dir>/checkpoint.pt`` (rank 0)."""
        if not self.config.sync_bn:  # per-shard running statistics: checkpoint their mean
            average_running_statistics(self.model, self.dist)
        per_rank = D.gather_objects({"meters": dict(self.meters), "rng": rng_state()},
                                    self.dist)
        if self.dist.is_main:
            save_search_state(self.checkpoint_path, self._state(per_rank))
        return self.checkpoint_path

    def _restore(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"]["state_dict"])
            self.w_optimizer.load_state_dict(state["w_optimizer"])
            self.arch_optimizer.load_state_dict(state["arch_optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise UsageError(f"checkpoint {self.checkpoint_path} does not match this "
                             f"configuration ({str(exc).splitlines()[0][:160]})") from None
        self.regularizers.load_state_dict(state.get("regularizers", {}))
        self.log.load_state_dict(state.get("monitor", {}))
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state.get("history", []))
        per_rank = state.get("per_rank")
        if isinstance(per_rank, list) and len(per_rank) == self.dist.world_size:
            own = per_rank[self.dist.rank]
            self.meters = dict(own["meters"])
            set_rng_state(own["rng"])
            return
        # Another number of processes (or a checkpoint without per-rank data): rank 0
        # carries the epoch's sums of all saved processes, the others start at zero, so the
        # reduced sums stay those of the whole global batch; the RNG is rank 0's everywhere.
        saved = ([r["meters"] for r in per_rank] if isinstance(per_rank, list)
                 else [dict(state.get("meters", {}))])
        self.meters = reduce_saved_meters(saved) if self.dist.is_main else {}
        set_rng_state(state["rng"])

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> SearchResult:
        """Search until ``config.epochs``; returns the derived genotype and where it is."""
        try:
            result = self._run()
            # Every process waits for rank 0's last files before leaving the group (only on
            # success: a failed process must not wait in a collective its peers never reach).
            D.barrier(self.dist)
            return result
        finally:
            self.close()

    def _run(self) -> SearchResult:
        stopped_early = run_loop(self, self.callbacks)
        # After the loop: a signal while the genotype is written takes its default action.
        return self._finish(stopped_early)

    # -- what the engine's loop asks of the search (robustnas.engine.loop.Task) -----------
    interrupted = SearchInterrupted

    @property
    def epochs(self) -> int:  # noqa: D102
        return self.config.epochs

    @property
    def checkpoint_every(self) -> int:  # noqa: D102
        return self.config.checkpoint_every

    @property
    def seconds(self) -> float:
        """The epoch's training time so far (a meter: resumed with the epoch's sums)."""
        return self.meters.get("seconds", 0.0)

    @seconds.setter
    def seconds(self, value: float) -> None:
        self.meters["seconds"] = value

    def request_stop(self, reason: str) -> None:
        """Stop after this step with a checkpoint (see :mod:`robustnas.engine.callbacks`)."""
        self.stop_reason = reason

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
            logs = self.architect.step(x_t, y_t, x_v, y_v, lr, self.epoch, self.step,
                                       config.epochs)
        logits, loss, w_logs = weight_step(self.model, self.w_optimizer, x_t, y_t,
                                           self.criterion, config.grad_clip, self.regularizers,
                                           self.epoch, self.step, config.epochs, self.autocast,
                                           average=self.average)
        logs.update(w_logs)
        if not self.guard.end_step(self._guarded, (self.model,)):
            return  # a skipped step (skip_nonfinite) stays out of the epoch's averages
        n = y_t.shape[0]
        m = self.meters
        m["n"] = m.get("n", 0) + n
        m["loss"] = m.get("loss", 0.0) + float(loss) * n
        m["correct"] = m.get("correct", 0) + int((logits.argmax(1) == y_t).sum())
        for key, value in logs.items():
            m[f"sum/{key}"] = m.get(f"sum/{key}", 0.0) + value
            m[f"count/{key}"] = m.get(f"count/{key}", 0) + 1

    @torch.no_grad()
    def evaluate_val(self) -> tuple[float, float]:
        """Loss and accuracy of the supernet on the validation split (eval mode; under
        torchrun each process evaluates its shard of every batch and the sums are reduced).

        The whole split, unless ``max_steps_per_epoch`` caps the epoch: then its first
        ``max_steps_per_epoch`` batches, so that a capped smoke run is not held up by a
        full validation at every epoch's end (``val_images`` in the history says how many).
        """
        if not self.config.sync_bn:  # per-shard running statistics: evaluate with their mean
            average_running_statistics(self.model, self.dist)
        self.model.eval()
        total, loss_sum, correct = 0, 0.0, 0
        batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = self.data.val_eval.epoch(0)
        if self.config.max_steps_per_epoch > 0:  # every process takes the same batches
            batches = itertools.islice(batches, self.config.max_steps_per_epoch)
        for x, y in batches:
            with self.autocast():
                logits = self.model(x)
            loss_sum += float(self.criterion(logits.float(), y)) * y.shape[0]
            correct += int((logits.argmax(1) == y).sum())
            total += y.shape[0]
        self.model.train()
        if self.dist.enabled:
            sums = D.all_reduce_sum(torch.tensor([loss_sum, correct, total], dtype=torch.float64,
                                                 device=self.device), self.dist)
            loss_sum, correct, total = float(sums[0]), int(sums[1]), int(sums[2])
        self.val_images = total
        return loss_sum / max(total, 1), correct / max(total, 1)

    def _end_epoch(self) -> str | None:
        check_ranks_agree(self.model, self.dist, self.epoch + 1)
        val_loss, val_acc = self.evaluate_val()
        self.guard.check_value("validation loss", val_loss)
        m = reduce_meters(self.meters, self.dist)
        record = {
            "epoch": self.epoch + 1,
            "train_loss": m["loss"] / m["n"], "train_acc": m["correct"] / m["n"],
            "val_loss": val_loss, "val_acc": val_acc, "val_images": self.val_images,
            "lr": self.scheduler.get_last_lr()[0], "arch_lr": self.config.arch_lr,
            "epoch_seconds": m["seconds"], "images_per_second": m["n"] / max(m["seconds"], 1e-9),
            "arch_updates": self.epoch >= self.config.warmup_epochs,
        }
        for key in m:
            if key.startswith("sum/"):
                name = key[4:]
                record[name] = m[key] / m[f"count/{name}"]
        genotype = self.model.genotype()
        record["genotype"] = genotype.to_dict()
        if self.config.skip_nonfinite:
            record["skipped_steps"] = self.guard.end_epoch()
        stopped = None
        if self.dist.is_main:  # probes and files: rank 0 alone, with its own batch statistics
            with D.local_batch_statistics():
                stopped = self.log.end_epoch(self.epoch, record, genotype, self.data.val_probe)
        stopped = D.broadcast_object(stopped, self.dist)  # the collapse guard's decision
        self.history.append(record)
        if self.dist.is_main:
            write_history(self.run_dir, self.history)  # history.json / history.csv
        self.scheduler.step()
        self.epoch += 1
        self.step = 0
        self.meters = {}
        return stopped

    def _finish(self, stopped_early: str | None) -> SearchResult:
        config = self.config
        genotype = self.model.genotype(provenance(
            self.model, dataset=config.dataset, regularizer=self.regularizers.describe(),
            seed=config.seed, epoch=self.epoch, order=config.order,
            stopped_early=stopped_early, world_size=self.dist.world_size))
        self.log.close()
        path = self.run_dir / "genotype.json"
        if not self.dist.is_main:
            return SearchResult(self.run_dir, genotype, path, [], self.epoch, self.history,
                                stopped_early, rank=self.dist.rank)
        written = export_genotype(genotype, path)
        if config.bench_root and space_of_genotype(genotype).benches:
            from robustnas.tables.lookup import write_search_lookup

            write_search_lookup(genotype, config, self.run_dir)
        return SearchResult(self.run_dir, genotype, written["genotype"], written["pictures"],
                            self.epoch, self.history, stopped_early)


def _divergence_guard(searcher: Searcher) -> DivergenceGuard:
    """Stops the search at the first non-finite loss, gradient norm, α or weight."""
    guard = DivergenceGuard(
        "search", skip_nonfinite=searcher.config.skip_nonfinite,
        checkpoint=searcher.checkpoint_path, steps_per_epoch=searcher._steps_per_epoch(),
        hint="(lower w_lr or arch_lr with --set, clip with --set grad_clip=5, or skip such "
             "steps with --set skip_nonfinite=true)")
    guard.watch_loss_module(searcher.criterion)
    guard.watch_optimizer(searcher.arch_optimizer, "architecture parameters (α)",
                          "validation loss")
    guard.watch_optimizer(searcher.w_optimizer, "weights", "training loss")
    searcher._guarded = split_parameters(searcher.model, searcher.model.arch_parameters())
    return guard


def run_search(config: SearchConfig | None = None, *, config_file: str | None = None,
               overrides: dict[str, Any] | None = None, resume: bool = False,
               show_progress: bool = True, overwrite: bool = False,
               callbacks: Sequence[Callback] = ()) -> SearchResult:
    """Python API of ``robustnas search``.

    Either pass a :class:`SearchConfig`, or a YAML file and/or overrides. A new run refuses
    an ``out`` that already holds a run unless ``overwrite`` (which deletes the old run's
    files). With ``resume``, the run directory's checkpoint is continued with the settings
    it was started with, changed only where the file/overrides (or a whole ``config``) give
    a value, each change printed (see :mod:`robustnas.search.resume`); without a checkpoint
    the run starts from scratch, saying so. ``callbacks``: :class:`robustnas.engine.Callback`
    objects called during the run.
    """
    if resume:
        explicit = (config_to_dict(config) if config is not None
                    else explicit_settings(config_file, overrides))
        out = explicit.get("out") or SearchConfig.__dataclass_fields__["out"].default
        with _rank0_speaks():  # under torchrun, one process says what changes
            config, _ = resumed_search_config(out, explicit)
    elif config is None:
        config = resolve_config(SearchConfig, config_file, overrides)
    result = Searcher(config, show_progress=show_progress, resume=resume,
                      overwrite=overwrite, callbacks=callbacks).run()
    if result.rank == 0 and result.decisiveness_warning:
        # A notebook sees this; the CLI ignores the category and prints its own line.
        warnings.warn(result.decisiveness_warning, UniformGenotypeWarning, stacklevel=2)
    return result


@contextlib.contextmanager
def _rank0_speaks() -> Iterator[None]:
    """Silence stderr within the block on every process but rank 0 (torchrun)."""
    if D.dist_info_from_env().is_main:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        yield
