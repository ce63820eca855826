"""The end of a retraining epoch (the running :class:`~robustnas.train.trainer.Trainer` is
``self``)."""

from __future__ import annotations

from typing import Any

from robustnas import distributed as D
from robustnas.train.meters import epoch_metrics
from robustnas.train.setup import drop_path_at
from robustnas.train.state import BEST_NAME, LAST_NAME
from robustnas.train.summary import write_summary


def end_train_epoch(self: Any) -> None:
    """The epoch's record, held-out evaluation, the callbacks' ``on_epoch_record``, best-model
    selection (``best.pt``), the schedule's step, the checkpoints and the summary (the
    TensorBoard curves follow: :class:`~robustnas.train.epoch_log.EpochCurves`)."""
    config = self.config
    record = {"epoch": self.epoch + 1, **epoch_metrics(self),
              "lr": self.scheduler.get_last_lr()[0],
              "drop_path": drop_path_at(config, self.epoch),
              "epoch_seconds": self.seconds}
    record["images_per_second"] = record["images"] / max(self.seconds, 1e-9)
    if config.skip_nonfinite:
        record["skipped_steps"] = self.guard.end_epoch()
    last = self.epoch + 1 == config.epochs
    evaluated = config.eval_every > 0 and ((self.epoch + 1) % config.eval_every == 0
                                           or last)
    if evaluated:
        self.metrics = self.evaluate()
        record.update({f"eval_{k}": v for k, v in self.metrics.items() if k != "n"})
        record["eval_n"] = self.metrics["n"]
    if self.dist.is_main:  # the callbacks see (and may extend) the record before it is saved
        for callback in self.callbacks:
            callback.on_epoch_record(self, record)
    self.finish_reason = D.broadcast_object(self.finish_reason, self.dist)
    self.scheduler.step()
    self.epoch += 1
    self.step = 0
    self.seconds = 0.0
    self.meters = {}
    self.history.append(record)
    names = [LAST_NAME]
    if evaluated:
        value = self.metrics.get(f"{config.best_by}_acc")
        if value is not None and (self.best["value"] is None or value > self.best["value"]):
            self.best = {"metric": config.best_by, "value": value, "epoch": self.epoch}
            names.append(BEST_NAME)
    self.save(*names)
    if self.dist.is_main:
        write_summary(self, finished=self.epoch >= config.epochs)
