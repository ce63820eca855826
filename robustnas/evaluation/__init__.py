"""Robustness evaluation: attacks over ε lists, gradient-masking checks, measures,
corruptions and the JSON/Markdown report.

``evaluate(models_or_paths, attacks=..., eps=..., ...) -> Report`` is the entry point;
``write_model_card(report, "card.json")`` writes a RobustBench-style card from a report. The
``robustnas evaluate`` command only parses arguments and prints.
"""

from robustnas.evaluation.api import evaluate
from robustnas.evaluation.corruptions import CORRUPTIONS, corrupt
from robustnas.evaluation.lipschitz import conv2d_norm_bound, lipschitz_upper_bound
from robustnas.evaluation.loading import load_candidate, parse_eps_list
from robustnas.evaluation.measures import (
    harmonic_robustness_score,
    hessian_top_eigenvalue,
    jacobian_frobenius,
)
from robustnas.evaluation.model_card import model_card, write_model_card
from robustnas.evaluation.report import Report

__all__ = ["CORRUPTIONS", "Report", "conv2d_norm_bound", "corrupt", "evaluate",
           "harmonic_robustness_score", "hessian_top_eigenvalue", "jacobian_frobenius",
           "lipschitz_upper_bound", "load_candidate", "model_card", "parse_eps_list",
           "write_model_card"]
