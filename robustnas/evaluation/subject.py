"""What is being evaluated: a one-line description, and the guard against attacking a supernet.

A search checkpoint (``checkpoint.pt`` of ``robustnas search``) holds the whole supernet:
every candidate operation on every edge, mixed by softmax(α). Attacking it costs many times
more than the derived network and measures something nobody deploys. The searched
architecture is evaluated by deriving its genotype, retraining it, and evaluating the
retrained checkpoint; attacking the supernet itself needs an explicit ``supernet=True``
(``--supernet``).
"""

from __future__ import annotations

from typing import Any

from robustnas.errors import UsageError
from robustnas.evaluation.loading import Candidate, architecture_name, is_supernet_model
from robustnas.space.complexity import count_parameters


def is_supernet(cand: Candidate) -> bool:
    """Whether the candidate is a supernet (a search checkpoint's model)."""
    return is_supernet_model(cand.model)


def require_evaluable(cand: Candidate, allow_supernet: bool) -> None:
    """Refuse a supernet unless ``allow_supernet``: one line pointing to derive + retrain."""
    if not is_supernet(cand) or allow_supernet:
        return
    where = cand.checkpoint or cand.label
    raise UsageError(
        f"{where} is a search checkpoint (the whole supernet, every candidate operation "
        f"mixed by softmax(α)), not a trained network: run 'robustnas derive {where}' and "
        "'robustnas retrain genotype.json', then evaluate the retrained best.pt; to attack "
        "the supernet itself pass --supernet")


def describe_subject(cand: Candidate, dataset: str, n: int) -> str:
    """One line: which model, what kind, how large, on which images."""
    inner = getattr(cand.model, "module", cand.model)
    kind = "supernet of a search checkpoint (softmax(α) mixing)" if is_supernet(cand) \
        else "network"
    meta: dict[str, Any] = cand.metadata or {}
    trained = f", epoch {meta['epoch']}" if isinstance(meta.get("epoch"), int) else ""
    source = cand.checkpoint or "in-memory model"
    return (f"evaluating {cand.label}: {kind} {architecture_name(inner)}, "
            f"{count_parameters(inner):,} parameters ({source}{trained}) on {n} {dataset} "
            "test images")
