"""Retraining a genotype's network: standard and adversarial training, on one or many devices.

Python API::

    from robustnas.train import RetrainConfig, retrain
    result = retrain(RetrainConfig(genotype="ADVRUSH", adversarial="pgd", epochs=10))

Objectives (``adversarial``): ``none`` (DARTS standard training), ``pgd`` (Madry PGD-AT,
AdvRush protocol), ``trades`` (TRADES, β = 6), ``fgsm-rs`` (Wong et al.); see
:mod:`robustnas.train.config` for the defaults and their precedence.
"""

from robustnas.train.api import retrain
from robustnas.train.config import RetrainConfig
from robustnas.train.objectives import OBJECTIVES, Objective, ObjectiveOutput, ObjectiveSettings
from robustnas.train.result import RetrainResult
from robustnas.train.state import load_train_state
from robustnas.train.trainer import Trainer, TrainingInterrupted

__all__ = ["OBJECTIVES", "Objective", "ObjectiveOutput", "ObjectiveSettings", "RetrainConfig",
           "RetrainResult", "Trainer", "TrainingInterrupted", "load_train_state", "retrain"]
