"""The α step on adversarial validation batches (``alpha_objective: adversarial``).

DARTS' α step minimises the clean validation loss. With ``alpha_objective: adversarial``
each α step's validation batch is first replaced by PGD examples generated against the
supernet with the current α (and, under torchrun, each process attacks its own shard), so
α is chosen for the loss under attack; the regularisers of the α step (AdvRush, Jacobian,
...) then see that batch too. The weight step is unaffected: combine with
``w_objective`` for fully adversarial bilevel search (``--w-objective pgd
--alpha-objective adversarial``, the setting of E2RNAS' robust α step without its
multi-objective solver, and of DSRNA's adversarial supernet).

The attack is the weight step's: ``w_objective_options`` (ε, steps, step size, random
start, attack BN mode) resolved with the defaults of ``w_objective`` (pgd: PGD-7 at
8/255, step ε/4; fgsm-rs: one step of 1.25·ε from a random start, i.e. FGSM-RS; trades:
its 10 steps of ε/4, but on the cross-entropy, not TRADES' KL), or with PGD's defaults
when the weight step is clean. The validation loss is the cross-entropy on the attacked
batch in every case.

Random starts come from the global generator, which search checkpoints save at step
boundaries, so a resumed search stays bit-identical on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from robustnas.errors import UsageError

if TYPE_CHECKING:  # config.py imports this module; torch-free commands must not pay for torch
    import torch
    from torch import nn

#: The values of ``alpha_objective``.
ALPHA_OBJECTIVES = ("clean", "adversarial")


def check_alpha_objective(name: str) -> None:
    """Refuse an unknown value in one line."""
    if name not in ALPHA_OBJECTIVES:
        raise UsageError(f"alpha_objective must be one of {', '.join(ALPHA_OBJECTIVES)}, "
                         f"got {name!r}")


class AlphaAttack:
    """Turns the α step's validation batch into adversarial examples (see the module)."""

    def __init__(self, settings: Any, autocast: Callable[[], Any] = contextlib.nullcontext
                 ) -> None:
        self.settings = settings
        self.autocast = autocast

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """PGD examples of ``(x, y)`` against ``model`` (detached, in [0, 1])."""
        from robustnas.attacks import pgd_attack
        from robustnas.train.objectives.base import attack_mode

        s = self.settings
        with attack_mode(model, s.attack_bn), self.autocast():
            x_adv = pgd_attack(model, x, y, s.eps, s.step_size, s.steps,
                               random_start=s.random_start)
        return x_adv.detach()


def build_alpha_attack(name: str, w_objective: str, w_options: Mapping[str, Any] | None,
                       autocast: Callable[[], Any] = contextlib.nullcontext
                       ) -> AlphaAttack | None:
    """The α step's attack, or None for ``clean`` (DARTS' α step)."""
    from robustnas.search.weight_objective import normalized_name, resolved_settings

    check_alpha_objective(name)
    if name == "clean":
        return None
    base = normalized_name(w_objective)
    return AlphaAttack(resolved_settings("pgd" if base == "none" else base,
                                         dict(w_options or {})), autocast)
