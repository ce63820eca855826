"""Detecting divergence: non-finite losses, gradient norms, α, weights or batch-norm statistics.

A :class:`DivergenceGuard` watches one training loop (search or retraining):

* losses are recorded as they are computed (:meth:`DivergenceGuard.record_loss`, or a
  forward hook on the criterion module, :meth:`DivergenceGuard.watch_loss_module`);
* a pre-step hook on each optimiser (:meth:`DivergenceGuard.watch_optimizer`) looks at the
  losses recorded since the previous optimiser step and at the gradient norm of the
  parameters about to be updated, *before* they are updated;
* after the step, :meth:`DivergenceGuard.check_module` checks every parameter and buffer.

By default the first non-finite value raises :class:`~robustnas.errors.DivergenceError`
(exit status 3) naming what became non-finite, the epoch and the step; the parameters have
not been updated with it, and the loop raises before any checkpoint, genotype or ``best.pt``
is written from it, so the last checkpoint on disk is the last good state.

With ``skip_nonfinite`` a step whose loss or gradient is non-finite is skipped instead: the
optimisers' gradients are dropped (so neither the parameters nor the optimiser state move)
and the batch-norm statistics of the step are restored. Skips are counted and reported on
stderr; :data:`MAX_CONSECUTIVE_SKIPS` skips in a row (or a whole epoch of them) still stop
the run, since the training no longer makes progress. Parameters that become non-finite
after a step with finite gradients (an overflow in the update itself) always stop the run.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustnas.errors import DivergenceError
from robustnas.resume import apply_learning_rate

#: Skipped steps in a row after which the run stops even with ``skip_nonfinite``.
MAX_CONSECUTIVE_SKIPS = 50
#: Skips reported one by one on stderr; later ones are only counted.
REPORTED_SKIPS = 20


class DivergenceGuard:
    """Stops (or skips steps of) a training loop as soon as anything becomes non-finite.

    ``run`` names the loop in messages ("search", "retraining"); ``checkpoint`` is the file
    that holds the last good state; ``hint`` says how to continue (e.g. which learning-rate
    option to lower); ``steps_per_epoch`` bounds the consecutive skips.
    """

    def __init__(self, run: str, *, skip_nonfinite: bool = False,
                 checkpoint: str | Path | None = None, hint: str = "",
                 steps_per_epoch: int | None = None) -> None:
        self.run = run
        self.skip_nonfinite = skip_nonfinite
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.hint = hint
        self.max_consecutive = MAX_CONSECUTIVE_SKIPS
        if steps_per_epoch:
            self.max_consecutive = max(1, min(MAX_CONSECUTIVE_SKIPS, steps_per_epoch))
        self.epoch, self.step = 0, 0
        self.skipped_total = 0
        self.skipped_in_epoch = 0
        self.consecutive = 0
        self.step_skipped = False
        self._losses: list[tuple[str, torch.Tensor]] = []
        self._buffers: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._handles: list[Any] = []

    # -- wiring ------------------------------------------------------------------------
    def watch_optimizer(self, optimizer: torch.optim.Optimizer, what: str,
                        loss_name: str = "loss") -> None:
        """Check the losses and the gradient norm of ``what`` before each ``optimizer.step``.

        ``loss_name`` names the losses recorded without a name since the previous step
        (e.g. "validation loss" for the α optimiser of a search).
        """
        def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            self._before_update(opt, what, loss_name)
        self._handles.append(optimizer.register_step_pre_hook(hook))

    def watch_loss_module(self, module: nn.Module) -> None:
        """Record every output of the loss ``module`` (e.g. the criterion) as a loss."""
        def hook(mod: nn.Module, inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                self.record_loss(output)
        self._handles.append(module.register_forward_hook(hook))

    def remove(self) -> None:
        """Detach all hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- per step ----------------------------------------------------------------------
    def begin_step(self, epoch: int, step: int, modules: Iterable[nn.Module] = ()) -> None:
        """Start step ``step`` (0-based, within epoch ``epoch``, 0-based).

        With ``skip_nonfinite`` the buffers (batch-norm statistics) of ``modules`` are
        copied, so that a skipped step can be undone completely.
        """
        self.epoch, self.step = epoch, step
        self.step_skipped = False
        self._losses = []
        self._buffers = None
        if self.skip_nonfinite:
            self._buffers = [(b, b.detach().clone()) for m in modules for b in m.buffers()]

    def record_loss(self, loss: torch.Tensor, what: str | None = None) -> None:
        """Remember ``loss`` (no synchronisation); it is checked at the next optimiser step."""
        self._losses.append((what, loss.detach()))

    def end_step(self, parameters: Mapping[str, Iterable[tuple[str, torch.Tensor]]],
                 modules: Iterable[nn.Module] = ()) -> bool:
        """Check parameters and buffers after the step; True if the step counts.

        ``parameters`` maps a kind ("weights", "α") to named tensors; ``modules`` are the
        modules whose buffers (batch-norm statistics) are checked. Raises
        :class:`DivergenceError` on a non-finite parameter, or on a non-finite buffer
        unless the step was skipped (its buffers are then restored). Returns False for a
        skipped step, which the caller leaves out of its running averages.
        """
        parameters = {what: list(named) for what, named in parameters.items()}
        modules = list(modules)
        everything = [t for named in parameters.values() for _, t in named]
        everything += [b for m in modules for b in m.buffers()]
        if _all_finite(everything):  # the usual case: one synchronisation
            return self._finish_step()
        for what, named in parameters.items():
            bad = _first_nonfinite(named)
            if bad is not None:
                raise self._error(f"the {what} became non-finite (parameter {bad})")
        for module in modules:
            bad = _first_nonfinite(module.named_buffers())
            if bad is not None:
                if not self.skip_nonfinite:
                    raise self._error(f"the batch-norm statistics became non-finite "
                                      f"(buffer {bad})")
                self._skip(f"non-finite batch-norm statistics (buffer {bad})")
        return self._finish_step()

    def _finish_step(self) -> bool:
        if self.step_skipped and self._buffers is not None:
            with torch.no_grad():
                for live, saved in self._buffers:
                    live.copy_(saved)
        self._buffers = None
        if self.step_skipped:
            return False
        self.consecutive = 0
        return True

    def check_value(self, what: str, value: float) -> None:
        """Raise :class:`DivergenceError` if ``value`` (e.g. a validation loss) is non-finite."""
        if not math.isfinite(value):
            raise self._error(f"the {what} became {value}")

    def end_epoch(self) -> int:
        """The number of steps skipped in the epoch that ends (and reset it)."""
        skipped, self.skipped_in_epoch = self.skipped_in_epoch, 0
        return skipped

    # -- internals ---------------------------------------------------------------------
    def _before_update(self, optimizer: torch.optim.Optimizer, what: str,
                       loss_name: str) -> None:
        losses, self._losses = self._losses, []
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        norm = None
        if params:
            norm = torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(p.grad.detach(), dtype=torch.float64)
                 for p in params]))
        if _all_finite([t for _, t in losses] + ([norm] if norm is not None else [])):
            return  # the usual case: one synchronisation
        cause = _nonfinite_loss([(name or loss_name, t) for name, t in losses])
        if cause is None and norm is not None and not torch.isfinite(norm):
            cause = f"the gradient norm of the {what} became {float(norm)}"
        if cause is None:
            return
        if not self.skip_nonfinite:
            raise self._error(cause)
        for p in params:  # optimisers leave parameters without a gradient untouched
            p.grad = None
        self._skip(cause)

    def _skip(self, cause: str) -> None:
        if not self.step_skipped:
            self.step_skipped = True
            self.skipped_total += 1
            self.skipped_in_epoch += 1
            self.consecutive += 1
            if self.skipped_total <= REPORTED_SKIPS:
                more = (" (further skips are only counted)"
                        if self.skipped_total == REPORTED_SKIPS else "")
                print(f"warning: {self.run} epoch {self.epoch + 1}, step {self.step + 1}: "
                      f"skipped a step ({cause}){more}", file=sys.stderr)
        if self.consecutive >= self.max_consecutive:
            raise self._error(f"{cause}, and {self.consecutive} steps in a row were skipped")

    def _error(self, cause: str) -> DivergenceError:
        where = f"at epoch {self.epoch + 1}, step {self.step + 1}"
        if self.checkpoint is not None and self.checkpoint.is_file():
            kept = (f"the last good checkpoint {self.checkpoint} is kept; continue with "
                    f"--resume")
        else:
            kept = "no checkpoint had been written yet; start again"
        hint = f" {self.hint}" if self.hint else ""
        return DivergenceError(f"{self.run} diverged: {cause} {where}; nothing was written "
                               f"from the diverged parameters; {kept}{hint}")


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every floating-point element of ``tensors`` is finite (one synchronisation)."""
    flags = [torch.isfinite(t.detach()).all() for t in tensors if t.is_floating_point()]
    return not flags or bool(torch.stack(flags).all())


def _nonfinite_loss(losses: list[tuple[str, torch.Tensor]]) -> str | None:
    """A message for the first non-finite recorded loss, or None (one synchronisation)."""
    if not losses:
        return None
    flags = torch.stack([torch.isfinite(t.float()).all() for _, t in losses])
    if bool(flags.all()):
        return None
    index = int((~flags).nonzero()[0])
    what, value = losses[index]
    shown = float(value.float().reshape(-1)[~torch.isfinite(value.float().reshape(-1))][0])
    return f"the {what} became {shown}"


def _first_nonfinite(named: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first tensor with a non-finite element, or None (one synchronisation)."""
    items = [(n, t) for n, t in named if t.is_floating_point()]
    if not items:
        return None
    flags = torch.stack([torch.isfinite(t.detach()).all() for _, t in items])
    if bool(flags.all()):
        return None
    return items[int((~flags).nonzero()[0])][0]


def change_learning_rate(optimizer: torch.optim.Optimizer, scheduler: Any,
                         new_lr: float) -> bool:
    """Give a restored optimiser and its schedule the base learning rate ``new_lr``.

    Used when a run is resumed with a lower learning rate (after a divergence). A thin
    wrapper of :func:`robustnas.resume.apply_learning_rate`, the one rule of every loop:
    the schedule keeps its position and continues as a run started with ``new_lr`` would
    (cosine: ``eta_min + (lr_t - eta_min)·(new - eta_min)/(old - eta_min)``; step:
    ``lr_t·new/old``). Returns whether anything changed.
    """
    return apply_learning_rate(optimizer, scheduler, new_lr)


def split_parameters(model: nn.Module, arch: Iterable[torch.Tensor],
                     arch_name: str = "architecture parameters (α)"
                     ) -> dict[str, list[tuple[str, torch.Tensor]]]:
    """``model``'s named parameters split into ``{arch_name: α, "weights": the rest}``."""
    ids = {id(p) for p in arch}
    named = list(model.named_parameters())
    return {arch_name: [(n, p) for n, p in named if id(p) in ids],
            "weights": [(n, p) for n, p in named if id(p) not in ids]}
