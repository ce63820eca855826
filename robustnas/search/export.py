"""Deriving and exporting genotypes: JSON with provenance, and cell pictures beside it."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from torch import nn

from robustnas import __version__
from robustnas.errors import CheckpointError
from robustnas.io import ensure_writable_dir, load_checkpoint
from robustnas.space.models import model_from_payload
from robustnas.space.spaces import space_of_genotype


def provenance(model: nn.Module, *, dataset: str, regularizer: str, seed: int, epoch: int,
               **extra: Any) -> dict[str, Any]:
    """Where a derived genotype came from, including the final softmax(α) and how decisive
    it is (:mod:`robustnas.space.decisiveness`)."""
    from robustnas.space.decisiveness import model_decisiveness

    probs = model.alpha_softmax()
    return {
        "dataset": dataset,
        "regularizer": regularizer,
        "seed": seed,
        "epoch": epoch,
        "primitives": list(model.primitives),
        "alpha_softmax": {k: [[round(float(v), 6) for v in row] for row in t.tolist()]
                          for k, t in probs.items()},
        "decisiveness": model_decisiveness(model).to_dict(),
        "supernet": {k: v for k, v in getattr(model, "config", {}).items()
                     if k in ("C", "layers", "steps", "num_classes", "in_channels", "N",
                              "relaxation", "relaxation_options")},
        "robustnas_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def export_genotype(genotype: Any, path: str | Path, draw: bool = True) -> dict[str, Any]:
    """Write ``genotype`` as JSON and, if ``draw``, its cells as PNG and SVG beside it.

    Returns the paths written: ``{"genotype": Path, "pictures": [Path, ...]}``.
    """
    path = Path(path)
    ensure_writable_dir(path.parent)
    space = space_of_genotype(genotype)
    written: dict[str, Any] = {"genotype": space.save(genotype, path), "pictures": []}
    if draw:
        stem = path.stem + "_" if path.stem != "genotype" else ""
        written["pictures"] = space.draw_pictures(genotype, path.parent, stem)
    return written


def derive_from_checkpoint(checkpoint: str | Path, output: str | Path,
                           draw: bool = True) -> tuple[Any, dict[str, Any]]:
    """Derive the genotype of a search checkpoint and export it to ``output``."""
    ckpt = load_checkpoint(checkpoint)
    if ckpt.get("format") != "robustnas-search-checkpoint":
        raise CheckpointError(f"{checkpoint} is not a robustnas search checkpoint")
    model = model_from_payload(ckpt["model"], source=str(checkpoint))
    if not callable(getattr(model, "genotype", None)):
        raise CheckpointError(f"{checkpoint} does not hold a supernet")
    config = ckpt.get("config", {})
    geno = model.genotype(provenance(
        model, dataset=str(config.get("dataset")), regularizer=str(config.get("regularizer")),
        seed=int(config.get("seed", 0)), epoch=int(ckpt.get("epoch", 0)),
        order=config.get("order"), source_checkpoint=str(checkpoint)))
    return geno, export_genotype(geno, output, draw=draw)
