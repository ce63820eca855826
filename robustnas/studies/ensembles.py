"""How a study asks retraining for a jointly trained ensemble of K members."""

from __future__ import annotations

import dataclasses
from typing import Any

from robustnas.errors import UsageError


def ensemble_options(members: list[str], combine: str, init: str | None = None) -> dict[str, Any]:
    """RetrainConfig fields that train one model made of ``members`` combined by ``combine``
    (``features``: averaged last feature maps, one shared classifier; ``logits``) and
    initialised by ``init`` (``default``, ``cycled``: see :mod:`robustnas.space.ensemble`)."""
    from robustnas.train import RetrainConfig

    fields = {f.name for f in dataclasses.fields(RetrainConfig)}
    if "ensemble" not in fields:
        raise UsageError("this robustnas cannot train ensembles (RetrainConfig has no "
                         "'ensemble' option); remove the ensemble sources")
    options: dict[str, Any] = {"ensemble": list(members)}
    if init is not None and "ensemble_init" in fields:
        options["ensemble_init"] = init
    if "ensemble_combine" in fields:
        options["ensemble_combine"] = combine
    if "genotype" in fields:
        options["genotype"] = ""
    return options
