"""Architecture (α) updates: first order, and second order by unrolling one weight step.

Second order follows DARTS: with w' = w − ξ·(momentum·buf + ∇w L_train + wd·w),

    ∇α L_val(w', α) − ξ · ∇²_{α,w} L_train(w, α) · ∇_{w'} L_val(w', α),

where the mixed second derivative times a vector is a central finite difference,
(∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)) / (2ε), w± = w ± ε·v, ε = r / ‖v‖, with the
radius r = ``fd_radius`` (search option ``fd_radius``; default DARTS' 0.01).

Measured accuracy of that estimate (``experiments/fd_radius_error.py``: small supernets on
digits, in the step's own setting, against the exact product from double backward): at
r = 0.01 the relative error ‖approx − exact‖/‖exact‖ is 3.0 (median of 3 seeds, range
2.7-3.5) for C=4 with 3 cells and 3.9 (3.1-5.3) for C=8 with 5 cells; r = 0.1 gives 0.8-1.2;
smaller radii are worse (9-14 at 0.001). float64 gives the same figures, so the cause is
the ReLU/max-pool kinks the shifted weights cross, not rounding; only radii far below
float32 resolution (1e-7 in float64) match autograd. DARTS' value stays the default so that
second-order runs reproduce DARTS; treat the second-order correction as a rough estimate.
The unrolled weights are never built into a new model: the loss is evaluated with
``torch.func.functional_call`` on the same module with substituted weight tensors.

Regulariser terms enter the α loss. In second order they are evaluated at the current
weights w (their gradient is added to the unrolled validation gradient); DARTS' unrolling
is applied to the validation loss only. AdvRush itself is first order.

The weight step (:func:`weight_step`) is DARTS' clean SGD step unless a regulariser perturbs
the architecture for it (SDARTS: :mod:`robustnas.search.regularizers.sdarts`) or an
adversarial weight objective is given (:mod:`robustnas.search.weight_objective`). The
second-order unrolling above always unrolls the clean, unperturbed weight step: for SDARTS as
in the authors' code; an adversarial weight objective is refused with order 2.

Both steps first tell the supernet the epoch (:func:`announce_epoch`): GDAS anneals its
Gumbel-softmax temperature by it.

Under torchrun (:mod:`robustnas.search.parallel`) each process differentiates its shard's
loss and ``average`` (the mean over processes) is applied to the α gradient before the
step, and in second order also to the training gradient that builds w' and to the vector
v, so that every process unrolls to the same w' and uses the same ε.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from robustnas.search.objective import RegularizerSet
from robustnas.search.regularizers import PerturbContext, StepContext

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: Maps this process's gradients to their mean over processes (None: a single process).
Averager = Callable[[list[torch.Tensor]], list[torch.Tensor]] | None


class Architect:
    """Performs α steps for a :class:`~robustnas.space.supernet.SuperNet`."""

    def __init__(self, model: nn.Module, arch_optimizer: torch.optim.Optimizer,
                 w_optimizer: torch.optim.Optimizer, regularizers: RegularizerSet,
                 criterion: Criterion, order: int = 1,
                 autocast: Callable[[], Any] = contextlib.nullcontext,
                 fd_radius: float = 1e-2, average: Averager = None) -> None:
        self.model = model
        self.average = average
        #: ε·‖v‖ of the finite difference; 0.01 as in DARTS (see the module docstring).
        self.fd_radius = fd_radius
        self.arch_optimizer = arch_optimizer
        self.w_optimizer = w_optimizer
        self.regularizers = regularizers
        self.criterion = criterion
        self.order = order
        self.autocast = autocast

    # -- public ------------------------------------------------------------------------
    def step(self, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor,
             y_val: torch.Tensor, lr: float, epoch: int, step: int,
             total_epochs: int) -> dict[str, float]:
        """One α step; returns values to log (val loss, regulariser terms)."""
        announce_epoch(self.model, epoch, total_epochs)
        arch = self.model.arch_parameters()
        if self.order == 2:
            grads, val_loss = self._second_order_grads(x_train, y_train, x_val, y_val, lr)
            reg_grads, logs = self._regularizer_grads(x_val, y_val, epoch, step, total_epochs)
            if reg_grads is not None:
                grads = [g + r for g, r in zip(grads, reg_grads)]
        else:
            grads, val_loss, logs = self._first_order_grads(x_val, y_val, epoch, step,
                                                            total_epochs)
        if self.average is not None:
            grads = self.average(grads)
        for p, g in zip(arch, grads):
            p.grad = g
        self.arch_optimizer.step()
        self.arch_optimizer.zero_grad(set_to_none=True)
        logs["arch_val_loss"] = val_loss
        return logs

    # -- first order -------------------------------------------------------------------
    def _context(self, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor,
                 loss: torch.Tensor, epoch: int, step: int, total_epochs: int) -> StepContext:
        return StepContext(model=self.model, x=x, y=y, logits=logits, loss=loss,
                           criterion=self.criterion, phase="arch", epoch=epoch, step=step,
                           total_epochs=total_epochs)

    def _first_order_grads(self, x_val: torch.Tensor, y_val: torch.Tensor, epoch: int,
                           step: int, total_epochs: int
                           ) -> tuple[list[torch.Tensor], float, dict[str, float]]:
        with self.autocast():
            logits = self.model(x_val)
            loss = self.criterion(logits, y_val)
        arch = self.model.arch_parameters()
        logs: dict[str, float] = {}
        if not self.regularizers.applies("arch", epoch):
            return _grads(loss, arch), float(loss.detach()), logs
        if self.regularizers.reuses_step_graph("arch", epoch):
            ctx = self._context(x_val, y_val, logits, loss, epoch, step, total_epochs)
            reg, logs = self.regularizers.loss(ctx)
            grads = _grads(loss if reg is None else loss + reg, arch)
        else:
            # Differentiate the loss first: its graph is freed before the regulariser builds
            # its own (AdvRush's double-backward graph), which lowers the step's peak memory.
            grads = _grads(loss, arch)
            ctx = self._context(x_val, y_val, logits.detach(), loss.detach(), epoch, step,
                                total_epochs)
            reg, logs = self.regularizers.loss(ctx)
            if reg is not None:
                grads = [g + r for g, r in zip(grads, _grads(reg, arch))]
        return grads, float(loss.detach()), {f"regularizer/{k}": v for k, v in logs.items()}

    def _regularizer_grads(self, x_val: torch.Tensor, y_val: torch.Tensor, epoch: int,
                           step: int, total_epochs: int
                           ) -> tuple[list[torch.Tensor] | None, dict[str, float]]:
        if not self.regularizers.applies("arch", epoch):
            return None, {}
        with self.autocast():
            logits = self.model(x_val)
            loss = self.criterion(logits, y_val)
        reg, logs = self.regularizers.loss(
            self._context(x_val, y_val, logits, loss, epoch, step, total_epochs))
        logs = {f"regularizer/{k}": v for k, v in logs.items()}
        if reg is None:
            return None, logs
        return _grads(reg, self.model.arch_parameters()), logs

    # -- second order ------------------------------------------------------------------
    def _loss_with(self, weights: dict[str, torch.Tensor], x: torch.Tensor,
                   y: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.criterion(functional_call(self.model, weights, (x,)), y)

    def unrolled_weights(self, x_train: torch.Tensor, y_train: torch.Tensor,
                         lr: float) -> dict[str, torch.Tensor]:
        """w' = w − ξ·(momentum·buf + ∇w L_train + wd·w), as the weight optimiser would step."""
        named = self.model.named_weights()
        loss = self._loss_with({}, x_train, y_train)
        grads = [_zero_if_none(g, p) for g, (_, p) in
                 zip(torch.autograd.grad(loss, [p for _, p in named], allow_unused=True), named)]
        if self.average is not None:
            grads = self.average(grads)
        group = self.w_optimizer.param_groups[0]
        momentum, wd = group.get("momentum", 0.0), group.get("weight_decay", 0.0)
        unrolled = {}
        for (name, p), g in zip(named, grads):
            d = g + wd * p.detach()
            buf = self.w_optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None and momentum:
                d = d + momentum * buf
            unrolled[name] = p.detach() - lr * d
        return unrolled

    def _second_order_grads(self, x_train: torch.Tensor, y_train: torch.Tensor,
                            x_val: torch.Tensor, y_val: torch.Tensor,
                            lr: float) -> tuple[list[torch.Tensor], float]:
        arch = self.model.arch_parameters()
        unrolled = self.unrolled_weights(x_train, y_train, lr)
        names = list(unrolled)
        w_prime = {n: t.requires_grad_(True) for n, t in unrolled.items()}
        val_loss = self._loss_with(w_prime, x_val, y_val)
        grads = torch.autograd.grad(val_loss, arch + [w_prime[n] for n in names],
                                    allow_unused=True)
        d_arch = [_zero_if_none(g, p) for g, p in zip(grads[:len(arch)], arch)]
        vector = [_zero_if_none(g, w_prime[n]) for g, n in zip(grads[len(arch):], names)]
        if self.average is not None:
            vector = self.average(vector)
        implicit = self.hessian_vector_product(vector, x_train, y_train, self.fd_radius)
        return [da - lr * h for da, h in zip(d_arch, implicit)], float(val_loss.detach())

    def hessian_vector_product(self, vector: list[torch.Tensor], x: torch.Tensor,
                               y: torch.Tensor, r: float = 1e-2) -> list[torch.Tensor]:
        """∇²_{α,w} L_train(w, α) · v by central finite differences with ε = r / ‖v‖."""
        named = self.model.named_weights()
        arch = self.model.arch_parameters()
        norm = torch.sqrt(sum((v.double() ** 2).sum() for v in vector)).item()
        eps = r / max(norm, 1e-12)
        results = []
        for sign in (1.0, -1.0):
            shifted = {n: p.detach() + sign * eps * v for (n, p), v in zip(named, vector)}
            loss = self._loss_with(shifted, x, y)
            results.append([_zero_if_none(g, a) for g, a in
                            zip(torch.autograd.grad(loss, arch, allow_unused=True), arch)])
        return [(gp - gn) / (2 * eps) for gp, gn in zip(*results)]


def announce_epoch(model: nn.Module, epoch: int, total_epochs: int) -> None:
    """Tell the supernet where the search's schedule is, before the step's forward passes.

    The α step and the weight step both call this, so a relaxation that anneals with the
    epoch (GDAS' temperature, :mod:`robustnas.space.relaxations.gdas`) follows the search
    loop without the loop knowing about it, also in warm-up epochs (no α step) and from the
    first step of a resumed run. Models without ``set_epoch`` are left alone.
    """
    hook = getattr(model, "set_epoch", None)
    if callable(hook):
        hook(epoch, total_epochs)


def _zero_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad.detach()


def _grads(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [_zero_if_none(g, p)
            for g, p in zip(torch.autograd.grad(loss, params, allow_unused=True), params)]


def weight_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, criterion: Criterion, grad_clip: float,
                regularizers: RegularizerSet | None = None, epoch: int = 0, step: int = 0,
                total_epochs: int = 1,
                autocast: Callable[[], Any] = contextlib.nullcontext,
                average: Averager = None, objective: Any = None
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """One SGD step on the weights; returns (logits, loss, regulariser logs).

    ``average`` maps the gradients to their mean over processes (torchrun) before clipping.
    ``objective`` (a :class:`~robustnas.train.objectives.Objective`, built by
    :func:`robustnas.search.weight_objective.build_weight_objective`) replaces the clean
    loss by its adversarial one on the batch (None: the clean cross-entropy). Regularisers
    that perturb the architecture (SDARTS) do so for the forward passes and gradient of
    this step only (:meth:`RegularizerSet.perturb_arch`).
    """
    announce_epoch(model, epoch, total_epochs)
    perturbed = regularizers is not None and regularizers.perturbs(epoch)
    scope = (regularizers.perturb_arch(PerturbContext(
        model=model, x=x, y=y, criterion=criterion, epoch=epoch, step=step,
        total_epochs=total_epochs, autocast=autocast, average=average))
        if perturbed else contextlib.nullcontext({}))
    with scope as perturb_logs:
        logits, loss, logs = _weight_loss(model, x, y, criterion, objective, autocast)
        total = loss
        if regularizers is not None and regularizers.applies("weights", epoch):
            ctx = StepContext(model=model, x=x, y=y, logits=logits, loss=loss,
                              criterion=criterion, phase="weights", epoch=epoch, step=step,
                              total_epochs=total_epochs)
            reg, raw = regularizers.loss(ctx)
            logs.update({f"regularizer_w/{k}": v for k, v in raw.items()})
            if reg is not None:
                total = loss + reg
        weights = model.weights()
        grads = list(torch.autograd.grad(total, weights, allow_unused=True))
    logs.update({f"regularizer_w/{k}": v for k, v in perturb_logs.items()})
    if average is not None:  # unused weights keep no gradient, as with one process
        used = [i for i, g in enumerate(grads) if g is not None]
        for i, g in zip(used, average([grads[i] for i in used])):
            grads[i] = g
    for p, g in zip(weights, grads):
        p.grad = g
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(weights, grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return logits.detach(), loss.detach(), logs


def _weight_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Criterion,
                 objective: Any, autocast: Callable[[], Any]
                 ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """(logits, loss with its graph, logs) of the weight step: the clean cross-entropy, or
    the objective's loss with the logits of its training forward (clean ones where the
    objective has them, as TRADES; else the adversarial ones) and its extras."""
    if objective is None:
        with autocast():
            logits = model(x)
            loss = criterion(logits, y)
        return logits, loss, {}
    out = objective.compute(model, x, y)
    logits = out.clean_logits if out.clean_logits is not None else out.adv_logits
    return logits, out.loss, {f"w_objective/{k}": float(v) for k, v in out.extras.items()}
