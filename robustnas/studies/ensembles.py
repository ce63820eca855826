"""How a study asks retraining for a jointly trained ensemble of K members."""

from __future__ import annotations

import dataclasses
from typing import Any

from robustnas.errors import UsageError


def ensemble_options(members: list[str], combine: str) -> dict[str, Any]:
    """RetrainConfig fields that train one model made of ``members`` combined by ``combine``
    (``features``: averaged last feature maps, one shared classifier; ``logits``)."""
    from robustnas.train import RetrainConfig

    fields = {f.name for f in dataclasses.fields(RetrainConfig)}
    if "ensemble" not in fields:
        raise UsageError("this robustnas cannot train ensembles (RetrainConfig has no "
                         "'ensemble' option); remove the ensemble sources")
    options: dict[str, Any] = {"ensemble": ",".join(members)}
    if "ensemble_combine" in fields:
        options["ensemble_combine"] = combine
    if "genotype" in fields:
        options["genotype"] = ""
    return options
