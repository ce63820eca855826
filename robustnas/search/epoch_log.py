"""End-of-epoch monitoring of a search: TensorBoard curves and pictures, the input-Hessian
curve, and the DARTS-collapse guard."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustnas.monitor.units import format_rate
from robustnas.search.config import SearchConfig
from robustnas.search.objective import RegularizerSet
from robustnas.space.spaces import space_of_model


class EpochLogger:
    """Writes one epoch's record to TensorBoard and the terminal; applies the collapse guard."""

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

    # -- per epoch ---------------------------------------------------------------------
    def end_epoch(self, epoch: int, record: dict[str, Any], genotype: Any,
                  val_loader: Any) -> str | None:
        """Log ``record``; returns a reason string when the collapse guard stops the search."""
        step = epoch + 1
        w = self.writer
        w.scalars({"train/loss": record["train_loss"], "train/acc": record["train_acc"],
                   "val/loss": record["val_loss"], "val/acc": record["val_acc"],
                   "lr/weights": record["lr"], "lr/arch": record["arch_lr"],
                   "time/epoch_seconds": record["epoch_seconds"],
                   "time/images_per_second": record["images_per_second"],
                   "genotype/skip_connect_normal": genotype.count("skip_connect", "normal"),
                   "genotype/skip_connect_reduce": genotype.count("skip_connect", "reduce")},
                  step)
        from robustnas.space.decisiveness import model_decisiveness

        decided = model_decisiveness(self.model)
        record.update(decided.scalars())
        w.scalars(decided.scalars(), step)
        for key, value in record.items():
            if key.startswith(("regularizer", "arch_val_loss")) and isinstance(value, float):
                w.scalar(key, value, step)
        eigen = self._hessian_curves(epoch, val_loader, record)
        self._pictures(step, genotype)
        summary = (f"epoch {step}/{self.config.epochs}: train loss {record['train_loss']:.3f} "
                   f"acc {record['train_acc']:.3f} | val loss {record['val_loss']:.3f} "
                   f"acc {record['val_acc']:.3f} | {format_rate(record['images_per_second'])} | "
                   f"skips {genotype.count('skip_connect', 'normal')} | "
                   f"α margin {decided.median_op_margin:.2f}/{decided.num_ops}")
        print(summary, file=sys.stderr)
        w.flush()
        if self.guard is None:
            return None
        decision = self.guard.check(genotype, eigen, epoch)
        if decision.message:
            print(f"collapse guard: {decision.message}", file=sys.stderr)
            w.text("collapse_guard", decision.message, step)
        return decision.message if decision.stop else None

    def _pictures(self, step: int, genotype: Any) -> None:
        w = self.writer
        w.text("genotype", genotype.describe(), step)
        every = self.config.draw_every
        if every <= 0 or (step % every and step != self.config.epochs):
            return
        space = space_of_model(self.model)
        for tag, image in space.images(self.model, genotype).items():
            w.image(tag, image, step)

    def _hessian_curves(self, epoch: int, val_loader: Any,
                        record: dict[str, Any]) -> float | None:
        """Dominant eigenvalues every ``eval_hessian_every`` epochs (None otherwise)."""
        every = self.config.eval_hessian_every
        if every <= 0 or (epoch + 1) % every:
            return None
        from robustnas.search.curvature import hessian_top_eigenvalue

        x, y = next(iter(val_loader.epoch(0)))
        x = x.clone().requires_grad_(True)
        model = self.model
        was_training = model.training
        model.eval()
        iters = self.config.hessian_iters
        try:
            # Summed loss: the input Hessian is block-diagonal over samples, so its top
            # eigenvalue is the largest per-sample one in the batch.
            input_eig = hessian_top_eigenvalue(
                lambda: nn.functional.cross_entropy(model(x), y, reduction="sum"), [x],
                iters=iters, generator=torch.Generator().manual_seed(self.config.seed + epoch))
            # RobustDARTS: Hessian of the validation loss with respect to α.
            arch_eig = hessian_top_eigenvalue(
                lambda: nn.functional.cross_entropy(model(x.detach()), y),
                model.arch_parameters(), iters=iters,
                generator=torch.Generator().manual_seed(self.config.seed + epoch + 1))
        finally:
            model.train(was_training)
        record["hessian/input_top_eigenvalue"] = input_eig
        record["hessian/arch_top_eigenvalue"] = arch_eig
        self.writer.scalar("hessian/input_top_eigenvalue", input_eig, epoch + 1)
        self.writer.scalar("hessian/arch_top_eigenvalue", arch_eig, epoch + 1)
        return arch_eig

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
