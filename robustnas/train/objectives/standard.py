"""``none``: standard (non-adversarial) training, with DARTS' defaults.

DARTS' retraining protocol (DARTS, Liu et al., ICLR 2019, experiments section): 600 epochs,
batch 96, SGD lr 0.025 with a cosine schedule, momentum 0.9, weight decay 3e-4, cutout 16,
drop-path 0.2 increased linearly over the epochs, auxiliary head with weight 0.4,
gradient-norm clip 5. The loss is cross-entropy on the main logits plus the weighted
auxiliary cross-entropy. The cutout 16 is for 32x32 images; unless set, other image sizes
get half their side (:meth:`robustnas.train.config.RetrainConfig.cutout_for`).
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.train.objectives.base import OBJECTIVES, Objective, ObjectiveOutput


@OBJECTIVES.register("none")
class StandardObjective(Objective):
    """Cross-entropy on clean (augmented) images."""

    name = "none"
    adversarial = False
    defaults = {
        "epochs": 600, "batch_size": 96, "lr": 0.025, "lr_schedule": "cosine",
        "weight_decay": 3e-4, "cutout": 16, "drop_path": 0.2, "auxiliary_weight": 0.4,
        "eps": 8 / 255, "steps": 7, "best_by": "clean",
    }

    def compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        """Standard supervised loss; the clean logits come from the training forward."""
        logits, aux = self.forward(model, x)
        loss = self.supervised_loss(logits, aux, y)
        return ObjectiveOutput(loss, clean_logits=logits.detach())
