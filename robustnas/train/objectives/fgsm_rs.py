"""``fgsm-rs``: fast adversarial training, FGSM with a random start (Wong et al., ICLR 2020).

Each batch: δ uniform in the ε-ball, one signed-gradient step of size 1.25·ε, projection
onto the ε-ball and [0, 1], then a training step on the perturbed batch. Defaults: ε = 8/255,
30 epochs, batch 128, SGD lr 0.1 with a cosine schedule, weight decay 5e-4.

Differences from Wong et al.: they use a cyclic (triangular) learning rate over 15 epochs
and mixed precision; here the usual per-epoch schedules apply (cosine by default). They
craft the perturbation with the model in train mode (batch statistics); here, as for the
other objectives, the attack runs in eval mode by default (set ``attack_bn: train`` to
reproduce theirs). FGSM
training can overfit catastrophically (robust accuracy collapsing within an epoch); keep the
periodic PGD evaluation on and ``best_by: robust`` so that ``best.pt`` is the early-stopped
model, as they recommend.
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.attacks import fgsm_attack
from robustnas.train.objectives.base import (
    OBJECTIVES,
    Objective,
    ObjectiveOutput,
    attack_mode,
)


@OBJECTIVES.register("fgsm-rs")
class FGSMRSObjective(Objective):
    """Cross-entropy on FGSM-RS adversarial examples."""

    name = "fgsm-rs"
    clean_metric_mode = "eval"  # eval_clean_logits: the robust metric is the training forward
    defaults = {
        "epochs": 30, "batch_size": 128, "lr": 0.1, "lr_schedule": "cosine",
        "weight_decay": 5e-4, "cutout": 0, "drop_path": 0.0, "auxiliary_weight": 0.0,
        "eps": 8 / 255, "steps": 1, "best_by": "robust",
    }

    @classmethod
    def default_step_size(cls, eps: float, steps: int) -> float:
        """Wong et al.'s α = 1.25·ε."""
        return 1.25 * eps

    def compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        """One random-start FGSM step, then train on the result."""
        s = self.settings
        clean = self.eval_clean_logits(model, x)
        with attack_mode(model, s.attack_bn):
            x_adv = fgsm_attack(self.view(model), x, y, s.eps, random_start=s.random_start,
                                step_size=s.step_size)
        logits, aux = self.forward(model, x_adv)
        loss = self.supervised_loss(logits, aux, y)
        return ObjectiveOutput(loss, clean_logits=clean, adv_logits=logits.detach(), x_adv=x_adv)
