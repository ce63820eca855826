"""The regulariser interface and registry.

A regulariser adds a scalar term to the loss of the architecture step (and, if it says
so, of the weight step). It sees the whole step context: the model, the batch, the clean
loss and logits, and the schedule position. It may install an arch sampler on the
supernet in :meth:`Regularizer.setup` (how the log-normal method samples α) and keeps its
own state for resume.

A regulariser may also *perturb the architecture for the weight step* instead of adding a
term (SDARTS): :meth:`Regularizer.perturb_arch` returns a context manager that the weight
step enters around its forward passes and gradient (:func:`robustnas.search.architect.
weight_step`); inside it the supernet's mixing weights are the perturbed ones, on leaving
it they are the sampler's own again. The α step never sees the perturbation. Such a
regulariser sets ``perturbs_arch = True`` and usually has no phase (``phases`` empty).

Two regularisers that cannot work together name each other in ``incompatible`` (name ->
reason); :class:`robustnas.search.objective.RegularizerSet` refuses the combination.

A new regulariser is a new file in this package::

    @REGULARIZERS.register("mine")
    class Mine(Regularizer):
        def loss(self, ctx): ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from robustnas.registry import Registry

#: Every module of this package registers its regularisers here; they are imported on the
#: first lookup, so a new regulariser is a new file.
REGULARIZERS: Registry[type[Regularizer]] = Registry(
    "regularizer", discover=("robustnas.search.regularizers",))


@dataclass
class StepContext:
    """What a regulariser sees at one step.

    ``phase`` is ``"arch"`` (α step on a validation batch) or ``"weights"`` (w step on a
    training batch). ``loss`` and ``logits`` come from the forward pass of the step with
    its graph intact, so a regulariser can reuse them, unless every active regulariser
    declares ``reuses_step_graph = False``: the α step then differentiates the loss first
    and passes them detached (its graph is freed before the regulariser builds its own).
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    logits: torch.Tensor
    loss: torch.Tensor
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    phase: str
    epoch: int
    step: int
    total_epochs: int


@dataclass
class PerturbContext:
    """What :meth:`Regularizer.perturb_arch` sees: the weight step's training batch, the
    model and how the step computes (``autocast``; ``average`` maps gradients to their mean
    over processes under torchrun, None for one process)."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    epoch: int
    step: int
    total_epochs: int
    autocast: Callable[[], Any] = contextlib.nullcontext
    average: Callable[[list[torch.Tensor]], list[torch.Tensor]] | None = None


class Regularizer:
    """Base class: a zero term, active always, on the α step only."""

    #: Steps the term is added to: a subset of {"arch", "weights"}.
    phases: frozenset[str] = frozenset({"arch"})
    #: Whether :meth:`loss` differentiates through ``ctx.loss``/``ctx.logits``. False lets
    #: the α step free the forward's graph before the term is built (lower peak memory).
    reuses_step_graph: bool = True
    #: Whether :meth:`perturb_arch` perturbs the mixing weights of the weight step.
    perturbs_arch: bool = False
    #: Regularisers this one cannot be combined with: name -> why (one line).
    incompatible: ClassVar[dict[str, str]] = {}

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"unexpected options: {', '.join(sorted(options))}")

    def setup(self, model: nn.Module) -> None:
        """Called once with the supernet before search (or resume) starts."""

    def active(self, epoch: int) -> bool:
        """Whether the term applies at ``epoch`` (0-based)."""
        return True

    def effective(self, epoch: int) -> bool:
        """Whether the term can change anything at ``epoch``: :meth:`active` unless a
        schedule makes an active term vanish (AdvRush's radius ramp starts at 0)."""
        return self.active(epoch)

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        """The term to add (a scalar tensor with graph) and named values to log."""
        return ctx.loss.new_zeros(()), {}

    def perturb_arch(self, ctx: PerturbContext) -> contextlib.AbstractContextManager[
            dict[str, float]]:
        """A context manager within which the weight step's mixing weights are perturbed;
        it yields named values to log. Only called when ``perturbs_arch`` and
        :meth:`active`."""
        return contextlib.nullcontext({})

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint (tensors, numbers, strings; no arbitrary objects)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


@REGULARIZERS.register("none")
class NoRegularizer(Regularizer):
    """Plain DARTS: no extra term."""
