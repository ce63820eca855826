"""Post-hoc ensembles for evaluation: separately trained checkpoints averaged into one model.

``ensemble_candidates([a.pt, b.pt, c.pt])`` loads the members and returns the ensemble
followed by each member, so one report shows the ensemble beside its members. The ensemble
is one differentiable model (:class:`robustnas.space.ensemble.Ensemble`) that averages the
members' **logits** by default (``combine="probs"``: their softmax probabilities, returned
as log-probabilities). Every white-box attack differentiates that average, i.e. through all
members at once: the attacked quantity is exactly the ensemble's prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robustnas.errors import UsageError
from robustnas.evaluation.loading import Candidate, load_candidate, model_input_spec

POST_HOC_COMBINES = ("logits", "probs")


def parse_checkpoint_list(text: str | Sequence[str | Path]) -> list[str]:
    """``"a.pt,b.pt"`` or a list -> member checkpoint paths (at least 2)."""
    items = text.split(",") if isinstance(text, str) else [str(p) for p in text]
    paths = [item.strip() for item in items if item.strip()]
    if len(paths) < 2:
        raise UsageError(f"an ensemble needs at least 2 checkpoints, got {len(paths)} "
                         "(e.g. --ensemble a/best.pt,b/best.pt,c/best.pt)")
    return paths


def ensemble_candidates(checkpoints: str | Sequence[str | Path], combine: str = "logits",
                        label: str = "ensemble") -> list[Candidate]:
    """The post-hoc ensemble of ``checkpoints`` (labelled ``label``), then each member.

    Members must take the same images and predict the same classes, and record the same
    dataset (or none). The members are shared, not copied: the ensemble and the member rows
    evaluate the very same weights.
    """
    from robustnas.space.ensemble import Ensemble

    if combine not in POST_HOC_COMBINES:
        raise UsageError(f"unknown ensemble combine {combine!r} for a post-hoc ensemble "
                         f"(choose from: {', '.join(POST_HOC_COMBINES)})")
    paths = parse_checkpoint_list(checkpoints)
    members = [load_candidate(p) for p in paths]
    specs = {model_input_spec(c.model) for c in members}
    if len(specs) != 1:
        raise UsageError("the ensemble's members differ in input channels or classes: "
                         + ", ".join(f"{c.label} {model_input_spec(c.model)}" for c in members))
    datasets = {(c.dataset or {}).get("name") for c in members}
    if len(datasets) != 1:
        raise UsageError("the ensemble's members were trained on different datasets ("
                         + ", ".join(sorted(str(d) for d in datasets)) + ")")
    model = Ensemble([c.model for c in members], combine=combine,
                     num_classes=model_input_spec(members[0].model)[1])
    ensemble = Candidate(label, model, checkpoint=None, dataset=members[0].dataset,
                         metadata={"ensemble_of": [str(p) for p in paths],
                                   "combine": combine})
    return [ensemble, *members]
