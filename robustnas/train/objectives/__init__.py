"""Training objectives, registered by name: ``none``, ``pgd``, ``trades``, ``fgsm-rs``.

See :mod:`robustnas.train.objectives.base` for the interface; one file per objective,
which ``OBJECTIVES`` finds itself on its first lookup (no import line here registers one).
"""

from robustnas.train.objectives.base import (
    OBJECTIVES,
    MainLogits,
    Objective,
    ObjectiveOutput,
    ObjectiveSettings,
    attack_mode,
    unwrap,
)
from robustnas.train.objectives.trades import trades_kl, trades_perturb

__all__ = ["OBJECTIVES", "MainLogits", "Objective", "ObjectiveOutput", "ObjectiveSettings",
           "attack_mode", "trades_kl", "trades_perturb", "unwrap"]
