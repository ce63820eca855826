"""Adversarial supernet training: the weight step of the search on adversarial examples.

``w_objective`` (default ``none``: DARTS' clean weight step, unchanged) names a retraining
objective of :mod:`robustnas.train.objectives` (``pgd``, ``trades``, ``fgsm-rs``); the
weight step then trains the supernet's weights with that objective's loss on the training
batch (its attack generated against the supernet with the current α), while the α step
stays clean on the validation batch. ``w_objective_options`` sets the attack: ``eps``,
``steps``, ``step_size``, ``random_start``, ``attack_bn``, ``trades_beta``; unset ones take
the retraining objective's defaults, on the pixel scale [0, 1] every dataset is read in
(ε = 8/255; steps 7 for pgd, 10 for trades, 1 for fgsm-rs; step ε/4, for fgsm-rs 1.25·ε;
TRADES β = 6; attack in eval mode, random start).

Where this comes from: RobNets (Guo et al., "When NAS Meets Robustness", CVPR 2020) trains
a one-shot supernet adversarially (PGD-7, ε = 8/255) and then samples and fine-tunes its
sub-networks, with no differentiable α; E2RNAS (Yue et al., "Effective, Efficient and
Robust Neural Architecture Search", arXiv 2011.09820) brings adversarial training into
DARTS' bilevel search, with a multi-objective (MGDA) α step over the validation loss and
the model size. Here only the weight step is adversarial and the α step stays DARTS' clean
one on the validation batch (E2RNAS' multi-objective α step is not implemented). AdvRush
(Mok et al., ICCV 2021) does the opposite: a clean weight step and a curvature term in the
α step; with ``w_objective`` both combine (``--regularizer advrush --w-objective pgd``).

What the weight step logs: the objective's loss (for pgd and fgsm-rs the cross-entropy on
the adversarial batch; for trades the clean cross-entropy plus β·KL) and the accuracy of the
training forward (adversarial for pgd and fgsm-rs, clean for trades), plus the objective's
extras (e.g. ``w_objective/trades_kl``). Regularisers on the weight step see the clean batch.

Second order is refused with an adversarial weight objective: the unrolled weight step of
:class:`~robustnas.search.architect.Architect` (w' = w − ξ∇w L_train) would have to unroll
through the attack as well to be the step the weights take, which it does not.

Attacks draw their random starts from the global generator, which checkpoints save and
restore at step boundaries, so a resumed search is bit-identical on CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from robustnas.config import parse_number
from robustnas.errors import UsageError

#: The retraining objectives' names a search may train its weights with (``none``: clean).
W_OBJECTIVES = ("none", "pgd", "trades", "fgsm-rs")
#: The settings ``w_objective_options`` may give.
W_OBJECTIVE_OPTIONS = ("eps", "steps", "step_size", "random_start", "attack_bn", "trades_beta")


def normalized_name(name: str) -> str:
    """``"FGSM_RS"`` -> ``"fgsm-rs"``: the objective registry's spelling."""
    return str(name).strip().lower().replace("_", "-")


def check_weight_objective(name: str, options: Mapping[str, Any] | None, order: int,
                           alpha_objective: str = "clean") -> None:
    """Refuse an unknown objective, unknown or bad options, or second order, in one line
    (``alpha_objective: adversarial`` attacks with these options too, even with a clean
    weight step: :mod:`robustnas.search.alpha_objective`)."""
    name = normalized_name(name)
    if name not in W_OBJECTIVES:
        raise UsageError(f"w_objective must be one of {', '.join(W_OBJECTIVES)}, got {name!r}")
    options = dict(options or {})
    if name == "none":
        if alpha_objective == "adversarial":
            resolved_settings("pgd", options)
        elif options:
            raise UsageError("w_objective_options given but neither w_objective nor "
                             "alpha_objective is adversarial")
        return
    if order == 2:
        raise UsageError(f"w_objective {name} needs order 1: the second-order step unrolls "
                         f"the clean weight step, not the adversarial one")
    resolved_settings(name, options)


def resolved_settings(name: str, options: Mapping[str, Any]) -> Any:
    """The :class:`~robustnas.train.objectives.ObjectiveSettings` of the weight step:
    the retraining objective's defaults, updated with ``options``."""
    from robustnas.train.objectives import OBJECTIVES, ObjectiveSettings

    cls = OBJECTIVES.get(normalized_name(name))
    unknown = sorted(set(options) - set(W_OBJECTIVE_OPTIONS))
    if unknown:
        raise UsageError(f"w_objective_options: unknown option(s) {', '.join(unknown)} "
                         f"(known: {', '.join(W_OBJECTIVE_OPTIONS)})")
    eps = _number(options, "eps", cls.defaults.get("eps", 8 / 255))
    steps = _number(options, "steps", cls.defaults.get("steps", 7))
    if not steps.is_integer() or steps < 1:
        raise UsageError(f"w_objective_options.steps must be an integer of at least 1, "
                         f"got {options.get('steps')!r}")
    steps = int(steps)
    step_size = _number(options, "step_size", cls.default_step_size(eps, steps))
    beta = _number(options, "trades_beta", ObjectiveSettings.trades_beta)
    if not 0 <= eps <= 1:
        raise UsageError(f"w_objective_options.eps must be in [0, 1] (pixel scale, e.g. "
                         f"8/255), got {eps:g}")
    for key, value in (("step_size", step_size), ("trades_beta", beta)):
        if value < 0:
            raise UsageError(f"w_objective_options.{key} must be non-negative, got {value:g}")
    attack_bn = str(options.get("attack_bn", "eval"))
    if attack_bn not in ("eval", "train"):
        raise UsageError(f"w_objective_options.attack_bn must be eval or train, got "
                         f"{attack_bn!r}")
    random_start = options.get("random_start", True)
    if isinstance(random_start, str):
        random_start = random_start.strip().lower() in ("true", "yes", "on", "1")
    # No clean-metric forward: the search logs the training forward's accuracy.
    return ObjectiveSettings(eps=eps, step_size=step_size, steps=steps,
                             random_start=bool(random_start), trades_beta=beta,
                             auxiliary_weight=0.0, attack_bn=attack_bn, clean_metrics=False)


def _number(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool):
        raise UsageError(f"w_objective_options.{key} must be a number, got {value!r}")
    try:
        return float(value) if isinstance(value, (int, float)) else parse_number(value)
    except (UsageError, ValueError):
        raise UsageError(f"w_objective_options.{key} must be a number (e.g. 8/255), "
                         f"got {value!r}") from None


def build_weight_objective(name: str, options: Mapping[str, Any] | None = None,
                           autocast: Callable[[], Any] = contextlib.nullcontext) -> Any:
    """The objective instance :func:`~robustnas.search.architect.weight_step` takes as
    ``objective`` (None for ``none``: the clean weight step)."""
    name = normalized_name(name)
    if name == "none":
        return None
    from robustnas.train.objectives import OBJECTIVES

    return OBJECTIVES.get(name)(resolved_settings(name, dict(options or {})), autocast)
