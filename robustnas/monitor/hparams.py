"""TensorBoard's HPARAMS view for a run: its settings and the curves that compare runs.

:func:`log_hparams` writes one hparams session into the run's own event file (not into a
sub-folder, as ``SummaryWriter.add_hparams`` would), declaring as metrics scalar tags that
the run logs anyway (``val/acc``, ``heldout/pgd_acc``, ...). TensorBoard then lists every
run under a ``--logdir`` in one table, one column per setting, and plots each metric
against any setting. Search, retraining and the study runner call it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

SEARCH_METRICS = ("val/acc", "val/loss", "train/acc", "decisiveness/median_op_margin",
                  "decisiveness/entropy")
"""Scalar tags a search logs every epoch and the HPARAMS view shows."""

RETRAIN_METRICS = ("heldout/clean_acc", "heldout/pgd_acc", "train/loss",
                   "time/images_per_second")
"""Scalar tags a retraining logs and the HPARAMS view shows."""


def hparam_values(settings: Any) -> dict[str, bool | int | float | str]:
    """Flatten a config dataclass or mapping into values TensorBoard accepts.

    Numbers, strings and booleans are kept; ``None`` becomes ``"none"``; lists and mappings
    become compact JSON strings (nested mappings are also flattened as ``key.sub``).
    """
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        from robustnas.config import config_to_dict

        settings = config_to_dict(settings)
    out: dict[str, bool | int | float | str] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif value is None:
            out[key] = "none"
        elif isinstance(value, Mapping):
            if not value:
                out[key] = "{}"
            for sub, inner in value.items():
                put(f"{key}.{sub}", inner)
        else:
            out[key] = json.dumps(value, default=str, separators=(",", ":"))

    for key, value in dict(settings).items():
        put(str(key), value)
    return out


def log_hparams(writer: Any, settings: Any, metrics: Sequence[str]) -> None:
    """Write ``settings`` as the hparams of ``writer``'s run (a :class:`RunLogger`).

    ``metrics`` are scalar tags the run logs itself; their values come from those curves.
    A disabled or closed writer does nothing.
    """
    inner = getattr(writer, "_writer", None)
    if inner is None:
        return
    from torch.utils.tensorboard.summary import hparams

    exp, ssi, sei = hparams(hparam_values(settings), {tag: 0.0 for tag in metrics})
    file_writer = inner._get_file_writer()
    for summary in (exp, ssi, sei):
        file_writer.add_summary(summary)
