"""Short, human-readable names of models for reports (any space, hand-crafted, ensembles)."""

from __future__ import annotations

from typing import Any

from torch import nn

from robustnas.space.spaces import space_of_genotype


def genotype_name(genotype: Any) -> str:
    """A short name that tells genotypes apart (its space's ``name_of``)."""
    return space_of_genotype(genotype).name_of(genotype)


def describe_model(model: nn.Module, short: bool = False) -> str:
    """A human-readable architecture: a genotype's cells (its short name with ``short``),
    a hand-crafted name or an ensemble."""
    model = getattr(model, "module", model)
    genotype = getattr(model, "genotype", None)
    describe = getattr(model, "describe", None)
    if genotype is not None and not callable(genotype):  # a network of a space
        space = space_of_genotype(genotype)
        if short:
            return space.name_of(genotype)
        return str(describe()) if callable(describe) else space.describe(genotype)
    members = getattr(model, "members", None)
    if short and isinstance(members, nn.ModuleList):  # a nested ensemble
        return f"ensemble of {len(members)}"
    if callable(describe):
        return str(describe())
    return type(model).__name__
