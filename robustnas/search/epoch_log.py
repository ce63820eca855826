"""End-of-epoch monitoring of a search, as built-in callbacks: TensorBoard curves, the
input/α-Hessian probe, the cell pictures, the terminal line and the DARTS-collapse guard.

Each monitor is a :class:`robustnas.engine.Callback` whose ``on_epoch_record`` runs on rank
0 during the epoch's end, before the checkpoint (so what it adds to the record is saved),
in the order of :meth:`EpochLogger.monitors`; the user's callbacks follow. The running
search gives them ``task.last_genotype`` (derived at this epoch's end) and
``task.data.val_probe`` (the unsharded validation split).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustnas.engine import Callback
from robustnas.monitor.units import format_rate
from robustnas.search.config import SearchConfig
from robustnas.search.objective import RegularizerSet
from robustnas.space.spaces import space_of_model


class EpochScalars(Callback):
    """The epoch's losses, accuracies, rates, skip counts, decisiveness and regulariser
    values as TensorBoard scalars (the decisiveness also joins the record)."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def on_epoch_record(self, task: Any, record: dict[str, Any]) -> None:  # noqa: D102
        from robustnas.space.decisiveness import model_decisiveness

        step, genotype, w = record["epoch"], task.last_genotype, self.writer
        w.scalars({"train/loss": record["train_loss"], "train/acc": record["train_acc"],
                   "val/loss": record["val_loss"], "val/acc": record["val_acc"],
                   "lr/weights": record["lr"], "lr/arch": record["arch_lr"],
                   "time/epoch_seconds": record["epoch_seconds"],
                   "time/images_per_second": record["images_per_second"],
                   "genotype/skip_connect_normal": genotype.count("skip_connect", "normal"),
                   "genotype/skip_connect_reduce": genotype.count("skip_connect", "reduce")},
                  step)
        decided = model_decisiveness(task.model)
        record.update(decided.scalars())
        w.scalars(decided.scalars(), step)
        for key, value in record.items():
            if key.startswith(("regularizer", "arch_val_loss", "w_objective")) and isinstance(
                    value, float):
                w.scalar(key, value, step)


class HessianProbe(Callback):
    """Dominant eigenvalues of the input Hessian and of the α-Hessian (RobustDARTS) of the
    validation loss every ``eval_hessian_every`` epochs, into the record and TensorBoard."""

    def __init__(self, writer: Any, config: SearchConfig) -> None:
        self.writer = writer
        self.config = config

    def on_epoch_record(self, task: Any, record: dict[str, Any]) -> None:  # noqa: D102
        every, epoch = self.config.eval_hessian_every, record["epoch"] - 1
        if every <= 0 or (epoch + 1) % every:
            return
        from robustnas.search.curvature import hessian_top_eigenvalue

        x, y = next(iter(task.data.val_probe.epoch(0)))
        x = x.clone().requires_grad_(True)
        model = task.model
        was_training = model.training
        model.eval()
        iters, seed = self.config.hessian_iters, self.config.seed
        try:
            # Summed loss: the input Hessian is block-diagonal over samples, so its top
            # eigenvalue is the largest per-sample one in the batch.
            input_eig = hessian_top_eigenvalue(
                lambda: nn.functional.cross_entropy(model(x), y, reduction="sum"), [x],
                iters=iters, generator=torch.Generator().manual_seed(seed + epoch))
            # RobustDARTS: Hessian of the validation loss with respect to α.
            arch_eig = hessian_top_eigenvalue(
                lambda: nn.functional.cross_entropy(model(x.detach()), y),
                model.arch_parameters(), iters=iters,
                generator=torch.Generator().manual_seed(seed + epoch + 1))
        finally:
            model.train(was_training)
        record["hessian/input_top_eigenvalue"] = input_eig
        record["hessian/arch_top_eigenvalue"] = arch_eig
        self.writer.scalar("hessian/input_top_eigenvalue", input_eig, epoch + 1)
        self.writer.scalar("hessian/arch_top_eigenvalue", arch_eig, epoch + 1)


class CellPictures(Callback):
    """The genotype as text every epoch, the space's pictures (α heatmaps, cells) every
    ``draw_every`` epochs and at the last."""

    def __init__(self, writer: Any, config: SearchConfig) -> None:
        self.writer = writer
        self.config = config

    def on_epoch_record(self, task: Any, record: dict[str, Any]) -> None:  # noqa: D102
        step, genotype, w = record["epoch"], task.last_genotype, self.writer
        w.text("genotype", genotype.describe(), step)
        every = self.config.draw_every
        if every <= 0 or (step % every and step != self.config.epochs):
            return
        for tag, image in space_of_model(task.model).images(task.model, genotype).items():
            w.image(tag, image, step)


class EpochLine(Callback):
    """One line per epoch on stderr."""

    def __init__(self, writer: Any, config: SearchConfig) -> None:
        self.writer = writer
        self.config = config

    def on_epoch_record(self, task: Any, record: dict[str, Any]) -> None:  # noqa: D102
        genotype = task.last_genotype
        print(f"epoch {record['epoch']}/{self.config.epochs}: train loss "
              f"{record['train_loss']:.3f} acc {record['train_acc']:.3f} | val loss "
              f"{record['val_loss']:.3f} acc {record['val_acc']:.3f} | "
              f"{format_rate(record['images_per_second'])} | "
              f"skips {genotype.count('skip_connect', 'normal')} | α margin "
              f"{record['decisiveness/median_op_margin']:.2f}/{len(task.model.primitives)}",
              file=sys.stderr)
        self.writer.flush()


class CollapseGuardMonitor(Callback):
    """The DARTS-collapse guard (:mod:`robustnas.search.collapse`): its message on stderr and
    TensorBoard, and ``task.finish_early`` when it stops the search."""

    def __init__(self, writer: Any, guard: Any) -> None:
        self.writer = writer
        self.guard = guard

    def on_epoch_record(self, task: Any, record: dict[str, Any]) -> None:  # noqa: D102
        eigen = record.get("hessian/arch_top_eigenvalue")
        decision = self.guard.check(task.last_genotype, eigen, record["epoch"] - 1)
        if decision.message:
            print(f"collapse guard: {decision.message}", file=sys.stderr)
            self.writer.text("collapse_guard", decision.message, record["epoch"])
        if decision.stop:
            task.finish_early(decision.message)


class EpochLogger:
    """The search's TensorBoard writer and its built-in end-of-epoch monitors."""

    def __init__(self, run_dir: Path, model: nn.Module, config: SearchConfig,
                 regularizers: RegularizerSet, enabled: bool = True) -> None:
        from robustnas.monitor import RunLogger

        self.model = model
        self.config = config
        self.regularizers = regularizers
        self.writer = RunLogger(run_dir, enabled=enabled)
        self.guard = _make_guard(config)
        self.writer.text("config", "\n".join(f"    {k}: {v}" for k, v in
                                             vars(config).items()), 0)
        from robustnas.monitor.hparams import SEARCH_METRICS, log_hparams

        log_hparams(self.writer, config, SEARCH_METRICS)

    def monitors(self) -> list[Callback]:
        """The built-in monitors, in the order they run."""
        w, c = self.writer, self.config
        built: list[Callback] = [EpochScalars(w), HessianProbe(w, c), CellPictures(w, c),
                                 EpochLine(w, c)]
        if self.guard is not None:
            built.append(CollapseGuardMonitor(w, self.guard))
        return built

    # -- resume ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The collapse guard's history."""
        return {"guard": self.guard.state_dict() if self.guard is not None else {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if self.guard is not None and state.get("guard"):
            self.guard.load_state_dict(state["guard"])

    def flush(self) -> None:
        """Flush pending TensorBoard events."""
        self.writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer."""
        self.writer.close()


def _make_guard(config: SearchConfig) -> Any:
    if config.collapse_max_skips is None and config.collapse_eigen_ratio is None:
        return None
    from robustnas.search.collapse import CollapseGuard

    return CollapseGuard(max_skips=config.collapse_max_skips,
                         eigen_ratio=config.collapse_eigen_ratio, action=config.collapse_action)
