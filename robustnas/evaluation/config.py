"""Options of ``robustnas evaluate``: :class:`EvaluateConfig`.

The settings of :func:`robustnas.evaluation.evaluate`, as a config like those of search and
retrain: ``robustnas evaluate --config eval.yaml --set n=500`` reads them (dataclass defaults
< YAML < command line), and ``evaluate(models, config=EvaluateConfig(...))`` takes them in a
notebook. What to evaluate (the checkpoints, ``--ensemble``) and where the report goes
(``--out``, ``--model-card``) are the command's own arguments, not settings; so are the
Python-only arguments of :func:`~robustnas.evaluation.evaluate` (``data``, ``progress``,
``announce``).

This module imports nothing heavy: ``--help`` is generated from it without PyTorch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from robustnas.config import unknown_option_message
from robustnas.errors import UsageError
from robustnas.options import THREADS_HELP, check_values, option

DEFAULT_ATTACKS = "clean,fgsm,pgd20"


@dataclass
class EvaluateConfig:
    """Every setting of ``robustnas evaluate``; YAML keys and ``--set`` names are these fields.

    ``attacks`` and ``eps`` are comma lists (``"clean,pgd20"``, ``"1/255,8/255"``) or lists.
    """

    attacks: str | list[str] = option(
        DEFAULT_ATTACKS, help="comma list: clean, fgsm, pgd<k>, cw<k>, autoattack, apgd-ce, "
                              "apgd-t, fab-t, square")
    eps: str | list[str] = option(
        "8/255", help="L∞ budget(s) in [0,1] pixel units, comma list for a sweep")
    n: int | None = option(None, low=1, help="evaluate the first N test images")
    batch_size: int = option(256, low=1, help="images per forward/attack batch")
    device: str = option("auto", help="auto, cpu, cuda or cuda:N")
    seed: int = option(0, help="seed of random starts and noise")
    restarts: int = option(1, low=1, help="random restarts of PGD/CW")
    measures: bool = option(
        False, help="Jacobian norm, input-Hessian top eigenvalue and Lipschitz bound")
    measure_n: int = option(100, low=1,
                            help="images used for the Jacobian/Hessian measures")
    hessian_iters: int = option(20, low=1, flag="",
                                help="power iterations of the input-Hessian eigenvalue")
    corruptions: bool = option(
        False, help="accuracy under common corruptions (CIFAR-C files or generated)")
    corruptions_dir: str | None = option(
        None, help="directory with <corruption>.npy and labels.npy (CIFAR-10-C layout)")
    dataset: str | None = option(
        None, help="dataset name (default: the one recorded in the checkpoint)")
    data_root: str | None = option(None, help="dataset directory")
    dataset_options: dict[str, Any] | None = option(
        None, flag="", help="dataset options (default: the checkpoint's, for its dataset)")
    # true: run the gradient-masking checks; the flag turns them off
    sanity: bool = option(True, flag="--no-sanity",
                          help="skip the gradient-masking checks (extra PGD runs)")
    sanity_n: int = option(200, low=1,
                           help="images used by the extra sanity-check attacks")
    large_eps: float = option(0.5, help="ε of the 'accuracy reaches zero' check, in (0, 1]")
    labels: list[str] | None = option(
        None, flag="", help="the models' names in the report (default: from their files)")
    run_dir: str | None = option(None, help="also log the figures to TensorBoard here")
    aa_steps: int | None = option(
        None, help="AutoAttack iterations (default 100; other values are not standard)")
    aa_queries: int | None = option(
        None, help="Square queries (default 5000; other values are not standard)")
    supernet: bool = option(
        False, help="allow evaluating a search checkpoint's whole supernet (slow, and not "
                    "the searched architecture: use derive + retrain for that)")
    threads: int = option(0, metavar="N", help=THREADS_HELP)

    def validate(self) -> None:
        """Reject values that cannot work, with one clear message (attacks and ε are parsed,
        and checked, by :func:`~robustnas.evaluation.evaluate`)."""
        check_values(self)
        if not 0 < self.large_eps <= 1:
            raise UsageError(f"large_eps must be in (0, 1], got {self.large_eps}")


def evaluation_settings(config: EvaluateConfig | None,
                        settings: Mapping[str, Any]) -> EvaluateConfig:
    """``config`` (default: the defaults) with the keyword ``settings`` on top, checked.

    An unknown keyword is a :class:`TypeError`, as for any Python function, naming the
    closest setting.
    """
    known = {f.name for f in dataclasses.fields(EvaluateConfig)}
    for name in settings:
        if name not in known:
            raise TypeError("evaluate() got an unexpected keyword argument: "
                            + unknown_option_message(name, "the call", known))
    if config is not None and not isinstance(config, EvaluateConfig):
        raise TypeError(f"config must be an EvaluateConfig, got {type(config).__name__}")
    resolved = dataclasses.replace(config or EvaluateConfig(), **settings)
    resolved.validate()
    return resolved
