"""Our own attacks, registered by name: ``clean``, ``fgsm``, ``pgd<k>`` and ``cw<k>``.

Defaults:

* ``pgd`` = PGD-20 with a uniform random start, cross-entropy loss, one restart.
* ``cw`` = CW∞: PGD on the Carlini-Wagner margin loss, 30 steps (the TRADES/MART-style
  evaluation), random start.
* Step size: ε/4 for 10 steps or more (2/255 at ε = 8/255, the reference protocol), and
  2.5·ε/k below 10 steps so that short attacks can still reach the boundary of the ball
  (Madry et al.'s rule). It scales with ε, so ε sweeps keep the same relative schedule.
  An absolute ``step_size`` option overrides the rule.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustnas.attacks.base import Attack, AttackOutput, register_attack
from robustnas.attacks.pgd import fgsm_attack, logits_of, pgd_attack


def default_step_size(eps: float, steps: int) -> float:
    """ε/4 for ``steps >= 10``, else 2.5·ε/steps."""
    return eps / 4 if steps >= 10 else 2.5 * eps / steps


class Clean(Attack):
    """No perturbation: clean accuracy."""

    white_box = False

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
            generator: torch.Generator | None = None) -> AttackOutput:
        with torch.no_grad():
            return AttackOutput(logits_of(model, x).argmax(1) == y)


class FGSM(Attack):
    """One signed-gradient step of size ε from the clean point (Goodfellow et al.)."""

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return fgsm_attack(model, x, y, eps)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "fgsm", "step_size": "eps"}


class PGD(Attack):
    """L∞ PGD on cross-entropy (``loss="ce"``) or on the CW margin (``loss="cw"``)."""

    def __init__(self, steps: int, loss: str = "ce", restarts: int = 1,
                 step_size: float | None = None, random_start: bool = True) -> None:
        self.steps = int(steps)
        self.loss = loss
        self.restarts = int(restarts)
        self.step_size = step_size
        self.random_start = bool(random_start)
        self.name = f"{'pgd' if loss == 'ce' else 'cw'}{self.steps}"

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
        step = self.step_size if self.step_size is not None else default_step_size(
            eps, self.steps)
        return pgd_attack(model, x, y, eps, step, self.steps, random_start=self.random_start,
                          restarts=self.restarts, loss=self.loss, generator=generator)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "pgd", "loss": self.loss, "steps": self.steps,
                "restarts": self.restarts, "random_start": self.random_start,
                "step_size": self.step_size if self.step_size is not None
                else ("eps/4" if self.steps >= 10 else f"2.5*eps/{self.steps}")}


@register_attack("clean")
def _clean() -> Attack:
    return Clean()


@register_attack("fgsm")
def _fgsm() -> Attack:
    return FGSM()


@register_attack("pgd", stepped=True)
def _pgd(steps: int | None = None, restarts: int = 1, step_size: float | None = None,
         random_start: bool = True) -> Attack:
    return PGD(20 if steps is None else steps, "ce", restarts, step_size, random_start)


@register_attack("cw", stepped=True)
def _cw(steps: int | None = None, restarts: int = 1, step_size: float | None = None,
        random_start: bool = True) -> Attack:
    return PGD(30 if steps is None else steps, "cw", restarts, step_size, random_start)


_pgd.options = _cw.options = ("restarts", "step_size", "random_start")  # type: ignore[attr-defined]
