"""Training objectives, registered by name: ``none``, ``pgd``, ``trades``, ``fgsm-rs``.

See :mod:`robustnas.train.objectives.base` for the interface; one file per objective.
"""

from robustnas.train.objectives import fgsm_rs, pgd, standard, trades  # noqa: F401 (register)
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
