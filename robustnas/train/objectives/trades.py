"""``trades``: TRADES (Zhang et al., ICML 2019) with β = 6.

    loss = CE(f(x), y) + β · (1/B) Σ_i KL( softmax f(x_i) ‖ softmax f(x'_i) )

where x' maximises the same KL term inside the L∞ ε-ball: start at x + 0.001·N(0, I), then
``steps`` signed-gradient ascent steps of size ``step_size``, each projected onto the ball
and [0, 1]. The inner target distribution softmax f(x) is computed once (no gradient); in
the outer loss gradients flow through both f(x) and f(x'), as in the official code.
Defaults: ε = 8/255, 10 steps of 2/255, β = 6; the rest follows the PGD protocol.

AdvRush's ``trades_loss`` feeds the clean batch where the adversarial one belongs, so its
KL term is identically zero and it trains on clean data only; this implementation computes
the term on the adversarial batch (tested against a direct computation). The inner
maximisation is written here rather than with :func:`robustnas.attacks.pgd_attack` because
its loss is the KL to the clean prediction, not a loss on the labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.train.objectives.base import (
    OBJECTIVES,
    Objective,
    ObjectiveOutput,
    attack_mode,
)

INIT_STD = 0.001  # TRADES' small Gaussian start (a uniform start is not used by TRADES)


def trades_kl(adv_logits: torch.Tensor, clean_logits: torch.Tensor,
              reduction: str = "batchmean") -> torch.Tensor:
    """KL(softmax(clean) ‖ softmax(adv)) per sample, summed over classes.

    ``reduction``: ``"batchmean"`` (the TRADES regulariser), ``"sum"`` or ``"none"``.
    """
    log_p = F.log_softmax(clean_logits.float(), dim=1)
    log_q = F.log_softmax(adv_logits.float(), dim=1)
    per_sample = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "batchmean":
        return per_sample.mean()
    raise ValueError(f"unknown reduction {reduction!r}")


def trades_perturb(model: nn.Module, x: torch.Tensor, clean_logits: torch.Tensor, eps: float,
                   step_size: float, steps: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """TRADES' inner maximisation of the KL to ``clean_logits`` in the L∞ ε-ball.

    ``model`` must return plain logits; its mode is left as it is and no gradient is left on
    its parameters. Returns detached images in [0, 1].
    """
    x = x.detach()
    target = clean_logits.detach()
    noise = torch.empty_like(x).normal_(generator=generator)
    x_adv = (x + INIT_STD * noise).clamp(0.0, 1.0)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            kl = trades_kl(model(x_adv), target, reduction="sum")
            (grad,) = torch.autograd.grad(kl, x_adv)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0)
    return x_adv.detach()


@OBJECTIVES.register("trades")
class TradesObjective(Objective):
    """Clean cross-entropy plus β × KL between clean and adversarial predictions."""

    name = "trades"
    defaults = {
        "epochs": 200, "batch_size": 64, "lr": 0.1, "lr_schedule": "step",
        "weight_decay": 1e-4, "cutout": 0, "drop_path": 0.0, "auxiliary_weight": 0.0,
        "eps": 8 / 255, "steps": 10, "best_by": "robust",
    }

    def compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        """Inner KL maximisation, then the TRADES loss (two train-mode forwards)."""
        s = self.settings
        view = self.view(model)
        with attack_mode(model, s.attack_bn):
            with torch.no_grad():
                target = view(x)
            x_adv = trades_perturb(view, x, target, s.eps, s.step_size, s.steps)
        clean_logits, aux = self.forward(model, x)
        adv_logits, _ = self.forward(model, x_adv)
        natural = self.supervised_loss(clean_logits, aux, y)
        kl = trades_kl(adv_logits, clean_logits)
        loss = natural + s.trades_beta * kl
        return ObjectiveOutput(loss, clean_logits=clean_logits.detach(),
                               adv_logits=adv_logits.detach(), x_adv=x_adv,
                               extras={"trades_kl": kl.detach(),
                                       "trades_natural_loss": natural.detach()})
