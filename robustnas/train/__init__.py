"""Retraining a genotype's network: standard and adversarial training, on one or many devices.

Python API::

    from robustnas.train import RetrainConfig, retrain
    result = retrain(RetrainConfig(genotype="ADVRUSH", adversarial="pgd", epochs=10))

Objectives (``adversarial``): ``none`` (DARTS standard training), ``pgd`` (Madry PGD-AT,
AdvRush protocol), ``trades`` (TRADES, β = 6), ``fgsm-rs`` (Wong et al.); see
:mod:`robustnas.train.config` for the defaults and their precedence.

The names other than :class:`RetrainConfig` are imported when first used, so that reading
the config (``robustnas retrain --help`` is generated from its fields) does not import
PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustnas.lazy import lazy_getattr
from robustnas.train.config import RetrainConfig

if TYPE_CHECKING:  # pragma: no cover - what the lazy names are, for type checkers
    from robustnas.train.api import retrain
    from robustnas.train.objectives import (
        OBJECTIVES,
        Objective,
        ObjectiveOutput,
        ObjectiveSettings,
    )
    from robustnas.train.result import RetrainResult
    from robustnas.train.state import load_train_state
    from robustnas.train.trainer import Trainer, TrainingInterrupted

#: Name -> the module that defines it (imported on first use: these need PyTorch).
_LAZY = {
    "retrain": "robustnas.train.api",
    "OBJECTIVES": "robustnas.train.objectives",
    "Objective": "robustnas.train.objectives",
    "ObjectiveOutput": "robustnas.train.objectives",
    "ObjectiveSettings": "robustnas.train.objectives",
    "RetrainResult": "robustnas.train.result",
    "load_train_state": "robustnas.train.state",
    "Trainer": "robustnas.train.trainer",
    "TrainingInterrupted": "robustnas.train.trainer",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = ["OBJECTIVES", "Objective", "ObjectiveOutput", "ObjectiveSettings", "RetrainConfig",
           "RetrainResult", "Trainer", "TrainingInterrupted", "load_train_state", "retrain"]
