"""``pgd``: Madry et al. (2018) PGD adversarial training, with AdvRush's protocol as defaults.

Defaults (AdvRush, Mok et al., ICCV 2021, and the authors' public code, nutellamok/advrush):
ε = 8/255, step 2/255 (ε/4), 7 steps from a uniform random start in the ε-ball, 200 epochs,
batch 64, SGD lr 0.1 momentum 0.9 weight decay 1e-4, lr ×0.1 at 50% and 75% of the epochs
(epochs 100 and 150 of 200), grad clip 5, no cutout, no drop-path, no auxiliary head.

Differences from AdvRush's ``madry_loss``: its "random start" is a Gaussian of std 0.001
(here the uniform ε-ball start of Madry et al.; ``random_start: false`` starts from x);
its schedule decays one epoch early (set ``lr_milestones: [99, 149]`` to reproduce); when an
auxiliary head is used, its loss is taken on the adversarial batch's forward (AdvRush runs a
separate clean forward for it).
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.attacks import pgd_attack
from robustnas.train.objectives.base import (
    OBJECTIVES,
    Objective,
    ObjectiveOutput,
    attack_mode,
)


@OBJECTIVES.register("pgd")
class PGDObjective(Objective):
    """Cross-entropy on PGD adversarial examples (min-max training)."""

    name = "pgd"
    clean_metric_mode = "eval"  # eval_clean_logits: the robust metric is the training forward
    defaults = {
        "epochs": 200, "batch_size": 64, "lr": 0.1, "lr_schedule": "step",
        "weight_decay": 1e-4, "cutout": 0, "drop_path": 0.0, "auxiliary_weight": 0.0,
        "eps": 8 / 255, "steps": 7, "best_by": "robust",
    }

    def attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """PGD examples for the batch, generated in the configured BN mode."""
        s = self.settings
        with attack_mode(model, s.attack_bn):
            return pgd_attack(self.view(model), x, y, s.eps, s.step_size, s.steps,
                              random_start=s.random_start)

    def compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        """Attack, then train on the adversarial batch."""
        clean = self.eval_clean_logits(model, x)
        x_adv = self.attack(model, x, y)
        logits, aux = self.forward(model, x_adv)
        loss = self.supervised_loss(logits, aux, y)
        return ObjectiveOutput(loss, clean_logits=clean, adv_logits=logits.detach(), x_adv=x_adv)
