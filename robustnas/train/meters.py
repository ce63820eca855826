"""Retraining's running sums of an epoch, its progress values and its epoch means (the
running :class:`~robustnas.train.trainer.Trainer` is ``self``)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from robustnas import distributed as D
from robustnas.train.objectives import ObjectiveOutput


def accumulate(self: Any, out: ObjectiveOutput, y: torch.Tensor) -> None:
    """Add a step's sums (float64 on the device: no host round trip per step)."""
    n = float(y.shape[0])
    values = {"n": torch.tensor(n, device=self.device),
              "loss": out.loss.detach().double() * n}
    for kind, logits in (("clean", out.clean_logits), ("robust", out.adv_logits)):
        if logits is not None:
            values[f"{kind}_n"] = torch.tensor(n, device=self.device)
            values[f"{kind}_loss"] = F.cross_entropy(logits.float(), y,
                                                     reduction="sum").double()
            values[f"{kind}_correct"] = (logits.argmax(1) == y).sum().double()
    for key, value in out.extras.items():
        values[f"extra_{key}"] = value.double() * n
    for key, value in values.items():
        value = value.to(device=self.device, dtype=torch.float64)
        self.meters[key] = self.meters[key] + value if key in self.meters else value


def progress_values(self: Any) -> dict[str, float]:
    """The progress bar's values, every 10 steps and at the epoch's last."""
    if self.step % 10 and self.step != self.steps_per_epoch_count:
        return {}
    m = {k: float(v) for k, v in self.meters.items()}
    post = {"loss": m["loss"] / max(m["n"], 1)}
    for kind in ("clean", "robust"):
        if f"{kind}_n" in m:
            post[f"{kind}_acc"] = m[f"{kind}_correct"] / max(m[f"{kind}_n"], 1)
    return post


def epoch_metrics(self: Any) -> dict[str, Any]:
    """The epoch's training means, summed over processes."""
    keys = sorted(self.meters)
    totals = D.all_reduce_sum(torch.stack([self.meters[k] for k in keys]), self.dist)
    m = dict(zip(keys, totals.tolist()))
    record: dict[str, Any] = {"train_loss": m["loss"] / m["n"]}
    for kind in ("clean", "robust"):
        if f"{kind}_n" in m:
            record[f"train_{kind}_loss"] = m[f"{kind}_loss"] / m[f"{kind}_n"]
            record[f"train_{kind}_acc"] = m[f"{kind}_correct"] / m[f"{kind}_n"]
    for key in keys:
        if key.startswith("extra_"):
            record[key] = m[key] / m["n"]
    record["images"] = int(m["n"])
    return record
