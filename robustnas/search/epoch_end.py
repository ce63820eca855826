"""The end of a search epoch (the running :class:`~robustnas.search.searcher.Searcher` is
``self``)."""

from __future__ import annotations

from typing import Any

from robustnas import distributed as D
from robustnas.monitor.history import write_history
from robustnas.search.parallel import check_ranks_agree, reduce_meters


def end_search_epoch(self: Any) -> str | None:
    """Validation, the epoch's record (means over processes), the derived genotype, rank 0's
    monitors (curves, probes, pictures, collapse guard: :mod:`robustnas.search.epoch_log`)
    and the callbacks' ``on_epoch_record``, the history files and the schedule's step;
    returns the reason to finish now (the collapse guard's) or None."""
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
    self.last_genotype = genotype
    if self.dist.is_main:  # probes and files: rank 0 alone, with its own batch statistics
        with D.local_batch_statistics():
            for monitor in [*self.monitors, *self.callbacks]:
                monitor.on_epoch_record(self, record)
    # the collapse guard's (or a callback's) decision, taken on rank 0
    stopped = D.broadcast_object(self.finish_reason, self.dist)
    self.history.append(record)
    if self.dist.is_main:
        write_history(self.run_dir, self.history)  # history.json / history.csv
    self.scheduler.step()
    self.epoch += 1
    self.step = 0
    self.meters = {}
    return stopped
