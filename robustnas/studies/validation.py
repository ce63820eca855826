"""Checking every training trial of a study before any trial starts."""

from __future__ import annotations

from typing import Any

from robustnas.config import resolve_config
from robustnas.errors import UsageError
from robustnas.studies.spec import StudySpec
from robustnas.studies.trial import architecture_options


def validate_trials(spec: StudySpec, expanded: Any) -> None:
    """Resolve and check every training trial's settings before any trial starts.

    Each architecture's settings are the study's ``training`` with its own ``set`` (and
    its network options); they are validated like a ``retrain`` command's, and against the
    dataset's image size (read once per dataset), so a study fails when it is read, not
    trial by trial.
    """
    from robustnas.data.augment import DARTS_IMAGE_SIZE
    from robustnas.train import RetrainConfig

    images: dict[str, int] = {}
    for arch in expanded.architectures:
        where = "training" if not arch.overrides else f"architectures[{arch.label}].set"
        settings = {**spec.training, **arch.overrides, **architecture_options(arch),
                    "seed": spec.seeds[0], "out": str(spec.out)}
        if arch.kind == "search":  # its genotype exists once its search has run
            settings.pop("genotype", None)
        try:
            config = resolve_config(RetrainConfig, None, settings)
            config.validate()
        except UsageError as exc:
            raise UsageError(f"study: {where} (architecture {arch.label}): {exc}") from None
        if not config.augment or config.cutout_for(DARTS_IMAGE_SIZE) == 0:
            continue  # no cutout at any image size (set to 0, or an objective without one)
        size = _image_size(config, images)
        # Not set (None): the objective's default for this image size, as training resolves it.
        cutout = config.cutout_for(size) if size is not None else config.cutout
        if size is not None and cutout and cutout >= size:
            key = "cutout" if "cutout" in arch.overrides else None
            name = f"architectures[{arch.label}].set.cutout" if key else "training.cutout"
            given = "" if ("cutout" in arch.overrides or "cutout" in spec.training) else (
                f" (not set: the {config.adversarial} default)")
            raise UsageError(
                f"study: {name} = {cutout}{given} is not smaller than the {size}-pixel "
                f"images of {config.dataset}; set {name} to {size // 2} or less, or 0")


def _image_size(config: Any, cache: dict[str, int]) -> int | None:
    """The dataset's image side in pixels (cached per dataset settings)."""
    import json as _json

    from robustnas.data import load_dataset

    ident = _json.dumps([config.dataset, config.data_root, config.dataset_options],
                        sort_keys=True, default=str)
    if ident not in cache:
        ds = load_dataset(config.dataset, root=config.data_root, download=config.download,
                          **(config.dataset_options or {}))
        cache[ident] = int(ds.image_size)
    return cache[ident]
