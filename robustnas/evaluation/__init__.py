"""Robustness evaluation: attacks over ε lists, gradient-masking checks, measures,
corruptions and the JSON/Markdown report.

``evaluate(models_or_paths, attacks=..., eps=..., ...) -> Report`` is the entry point (or
``evaluate(models, config=EvaluateConfig(...))``); ``write_model_card(report, "card.json")``
writes a RobustBench-style card from a report. The ``robustnas evaluate`` command only
parses arguments and prints.

The names below are imported when first used, so that reading :class:`EvaluateConfig`
(``robustnas evaluate --help``) does not import PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustnas.evaluation.config import EvaluateConfig
from robustnas.evaluation.model_card import model_card, write_model_card
from robustnas.evaluation.report import Report
from robustnas.lazy import lazy_getattr

if TYPE_CHECKING:  # pragma: no cover - what the lazy names are, for type checkers
    from robustnas.evaluation.api import evaluate
    from robustnas.evaluation.corruptions import CORRUPTIONS, corrupt
    from robustnas.evaluation.lipschitz import conv2d_norm_bound, lipschitz_upper_bound
    from robustnas.evaluation.loading import load_candidate, parse_eps_list
    from robustnas.evaluation.measures import (
        harmonic_robustness_score,
        hessian_top_eigenvalue,
        jacobian_frobenius,
    )

#: Name -> the module that defines it (imported on first use: these need PyTorch).
_LAZY = {
    "evaluate": "robustnas.evaluation.api",
    "CORRUPTIONS": "robustnas.evaluation.corruptions",
    "corrupt": "robustnas.evaluation.corruptions",
    "conv2d_norm_bound": "robustnas.evaluation.lipschitz",
    "lipschitz_upper_bound": "robustnas.evaluation.lipschitz",
    "load_candidate": "robustnas.evaluation.loading",
    "parse_eps_list": "robustnas.evaluation.loading",
    "harmonic_robustness_score": "robustnas.evaluation.measures",
    "hessian_top_eigenvalue": "robustnas.evaluation.measures",
    "jacobian_frobenius": "robustnas.evaluation.measures",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = ["CORRUPTIONS", "EvaluateConfig", "Report", "conv2d_norm_bound", "corrupt",
           "evaluate", "harmonic_robustness_score", "hessian_top_eigenvalue",
           "jacobian_frobenius", "lipschitz_upper_bound", "load_candidate", "model_card",
           "parse_eps_list", "write_model_card"]
