"""Composition of regularisers: ``"advrush:1,lipschitz:0.5"`` → one weighted sum.

Regularisers that perturb the architecture for the weight step (SDARTS) compose too: the
weight step enters every active one's :meth:`~robustnas.search.regularizers.Regularizer.
perturb_arch` (:meth:`RegularizerSet.perturb_arch`). They add no term, so a weight other
than 1 is refused for them; pairs that cannot work together (declared in ``incompatible``)
are refused when the set is built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from robustnas.config import parse_number
from robustnas.errors import UsageError
from robustnas.search.regularizers import (
    REGULARIZERS,
    PerturbContext,
    Regularizer,
    StepContext,
)


def parse_regularizer_spec(spec: str) -> list[tuple[str, float]]:
    """Parse ``"name[:weight],..."``; ``"none"`` or ``""`` gives an empty list."""
    terms: list[tuple[str, float]] = []
    for item in (s.strip() for s in str(spec).split(",")):
        if not item:
            continue
        name, _, weight = item.partition(":")
        name = name.strip()
        REGULARIZERS.get(name)  # unknown names fail here, listing the choices
        value = parse_number(weight) if weight else 1.0
        if name == "none":
            continue
        if any(name == n for n, _ in terms):
            raise UsageError(f"regularizer {name!r} is listed twice")
        terms.append((name, value))
    return terms


class RegularizerSet:
    """The active regularisers of a search with their weights."""

    def __init__(self, spec: str, options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        options = dict(options or {})
        self.terms: list[tuple[str, float, Regularizer]] = []
        names = parse_regularizer_spec(spec)
        unused = set(options) - {n for n, _ in names}
        if unused:
            raise UsageError("options given for regularizer(s) not in use: "
                             + ", ".join(sorted(unused)))
        for name, weight in names:
            opts = options.get(name) or {}
            if not isinstance(opts, Mapping):
                raise UsageError(f"regularizer_options.{name} must be a mapping")
            try:
                reg = REGULARIZERS.get(name)(**opts)
            except TypeError as exc:
                raise UsageError(f"regularizer {name}: {exc}") from None
            if not reg.phases and weight != 1:
                raise UsageError(f"regularizer {name} adds no loss term, so it takes no "
                                 f"weight (got {name}:{weight:g}); set its options instead")
            self.terms.append((name, weight, reg))
        _check_compatible(self.terms)

    @property
    def names(self) -> list[str]:
        """Names of the regularisers in use."""
        return [name for name, _, _ in self.terms]

    def describe(self) -> str:
        """``"none"`` or ``"advrush:1,lipschitz:0.5"``."""
        return ",".join(f"{n}:{w:g}" for n, w, _ in self.terms) or "none"

    def setup(self, model: nn.Module) -> None:
        """Let every regulariser prepare the supernet (e.g. install an arch sampler)."""
        for _, _, reg in self.terms:
            reg.setup(model)

    def check_schedule(self, epochs: int, warmup_epochs: int) -> None:
        """Refuse a search in which a regulariser would never act.

        AdvRush starts at epoch 50 by default (its paper's 60-epoch schedule); in a shorter
        search it would silently be plain DARTS. α-step terms count only from
        ``warmup_epochs`` on, when α starts to move.
        """
        for name, _, reg in self.terms:
            touches_weights = not reg.phases or "weights" in reg.phases or reg.perturbs_arch
            first = 0 if touches_weights else warmup_epochs
            if any(reg.effective(epoch) for epoch in range(first, epochs)):
                continue
            when = getattr(reg, "options", {}).get("start_epoch")
            start = f"starts at epoch {when} (0-based) and " if when is not None else ""
            raise UsageError(
                f"regularizer {name} {start}would never act in this search ({epochs} epochs"
                + (f", α moves from epoch {warmup_epochs}" if not touches_weights else "")
                + f"); set --reg-opt {name}.start_epoch=N with N < {epochs}"
                + (" and h_ramp false" if getattr(reg, "options", {}).get("h_ramp") else "")
                + " or search longer")

    def applies(self, phase: str, epoch: int) -> bool:
        """Whether any regulariser adds a term to ``phase`` at ``epoch``."""
        return any(phase in reg.phases and reg.active(epoch) for _, _, reg in self.terms)

    def reuses_step_graph(self, phase: str, epoch: int) -> bool:
        """Whether an active term of ``phase`` differentiates through the step's loss."""
        return any(phase in reg.phases and reg.active(epoch) and reg.reuses_step_graph
                   for _, _, reg in self.terms)

    def perturbs(self, epoch: int) -> bool:
        """Whether an active regulariser perturbs the architecture for the weight step."""
        return any(reg.perturbs_arch and reg.active(epoch) for _, _, reg in self.terms)

    @contextlib.contextmanager
    def perturb_arch(self, ctx: PerturbContext) -> Iterator[dict[str, float]]:
        """Enter every active perturbing regulariser's context (in spec order); yields
        their values to log as ``name/key``."""
        logs: dict[str, float] = {}
        with contextlib.ExitStack() as stack:
            for name, _, reg in self.terms:
                if reg.perturbs_arch and reg.active(ctx.epoch):
                    values = stack.enter_context(reg.perturb_arch(ctx))
                    logs.update({f"{name}/{k}": float(v) for k, v in values.items()})
            yield logs

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor | None, dict[str, float]]:
        """Weighted sum of the active terms for ``ctx.phase`` and the values to log."""
        total: torch.Tensor | None = None
        logs: dict[str, float] = {}
        for name, weight, reg in self.terms:
            if ctx.phase not in reg.phases or not reg.active(ctx.epoch):
                continue
            term, values = reg.loss(ctx)
            weighted = weight * term
            total = weighted if total is None else total + weighted
            logs[f"{name}/term"] = float(weighted.detach())
            for key, value in values.items():
                logs[f"{name}/{key}"] = float(value)
        if total is not None:
            logs["total"] = float(total.detach())
        return total, logs

    def state_dict(self) -> dict[str, Any]:
        """Each regulariser's state, by name."""
        return {name: reg.state_dict() for name, _, reg in self.terms}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        for name, _, reg in self.terms:
            if name in state:
                reg.load_state_dict(state[name])


def _check_compatible(terms: list[tuple[str, float, Regularizer]]) -> None:
    """Refuse a pair of regularisers either of which declares the other incompatible."""
    names = [name for name, _, _ in terms]
    for name, _, reg in terms:
        for other, why in reg.incompatible.items():
            if other in names and other != name:
                raise UsageError(f"regularizers {name} and {other} cannot be combined: {why}")
