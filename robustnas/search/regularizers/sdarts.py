"""SDARTS (Chen & Hsieh, "Stabilizing Differentiable Architecture Search via
Perturbation-based Regularization", ICML 2020): train the supernet's weights under a
perturbed architecture, so that the validation loss the α step sees is flat around α.

The weight step minimises, instead of L_train(w, ᾱ) with ᾱ = softmax(α),

    sdarts-rs  (random smoothing):   E_{δ ~ U[-ε, ε]} L_train(w, P(ᾱ + δ))
    sdarts-adv (adversarial):        max_{‖δ‖∞ ≤ ε} L_train(w, P(ᾱ + δ))

(one δ per step; the maximum approximated by PGD on the training batch), where P is the
authors' projection of every edge's row back to mixing weights: clamp to [0, 1], put 1 on
the row's arg-max when the row is then all zero, divide by the row sum. The α step is left
as in DARTS (clean, on the validation batch); the paper shows the weight step's smoothing
implicitly regularises the Hessian of the validation loss in α.

**Where the perturbation enters, and when it is removed** (the authors' public code,
xiangning-chen/SmoothDARTS, ``sota/cnn/train_search.py`` and ``attacker/perturb.py``): after
the α step, α is overwritten by softmax(α) (``softmax_arch_parameters``), perturbed and
projected (``Random_alpha`` / ``Linf_PGD_alpha``, ``clip``), used as the mixing weights of
the weight step's forward, and restored after the weight optimiser's step
(``restore_arch_parameters``). So δ is added to the *mixing weights* (after the softmax),
not to α. Here α is never written: while the weight step runs, a forward hook on the
supernet's arch sampler replaces the sampler's operation weights w by P(w.detach() + δ)
(:meth:`~robustnas.search.regularizers.Regularizer.perturb_arch`); on leaving the weight
step the hook is removed. α therefore changes only through the α optimiser, exactly as in
the authors' code, where the restored values are those after the α step.

**Defaults = the authors' code.** ε grows linearly with the epoch e (0-based) over the E
search epochs, ε(e) = 0.03 + (0.3 − 0.03)·e/E (``epsilon_alpha = 0.03 + (args.epsilon_alpha
- 0.03) * epoch / args.epochs`` with ``--epsilon_alpha 0.3``), for both variants: options
``epsilon_start`` (0.03) and ``epsilon`` (0.3); equal values give a constant ε.
``sdarts-adv``: ``steps`` = 7 signed-gradient ascent steps of size 2ε/steps on the training
cross-entropy, from a uniform random start in the ε-ball (``random_start``), each projected
onto the ε-ball around ᾱ and then by P; the attack runs with the model in eval mode (BN on
running statistics) and, as in the authors' code, the perturbation is dropped (δ = 0) when
it ends with a lower training loss than the unperturbed weights.

**Deviations.** δ is applied to whatever weights the sampler gives the pass: for the
default softmax that is ᾱ as in the paper; with :mod:`DrNAS <robustnas.search.regularizers.
drnas>`'s Dirichlet sampler, δ is added to each pass's sample (the PGD runs in eval mode,
around the Dirichlet mean). The weight step's weights are P(w + δ) with δ = (PGD iterate) −
ᾱ, which equals the authors' iterate up to float rounding (against the minimal port in
``tests/test_sdarts_drnas_wobjective.py``: sdarts-rs identical, sdarts-adv within 1.2e-7 on
the weights after a step, 2.4e-7 on its loss). Under torchrun the PGD gradients
and the before/after losses are averaged over processes, so every process uses the same δ
(the random δ is the same everywhere: every process advances the global generator alike).
Second order: the unrolled weight step of the α step stays clean, as in the authors'
``Architect`` (its ``_loss`` uses softmax(α)). The log-normal Lipschitz sampler's weights are
not mixing weights on the simplex, so P would change their meaning: that combination is
refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from robustnas.errors import UsageError
from robustnas.search.regularizers._options import Option, parse_options
from robustnas.search.regularizers.advrush import _bn_mode
from robustnas.search.regularizers.base import REGULARIZERS, PerturbContext, Regularizer

COMMON = {
    "epsilon": Option(float, 0.3, "non-negative", lambda v: v >= 0),
    "epsilon_start": Option(float, 0.03, "non-negative", lambda v: v >= 0),
    "start_epoch": Option(int, 0, "0 or more", lambda v: v >= 0),
}
ADV = {
    **COMMON,
    "steps": Option(int, 7, "at least 1", lambda v: v >= 1),
    "random_start": Option(bool, True),
}

#: How the operation weights of one sampler call are replaced: (cell kind, weights) -> new.
Replace = Callable[[bool, torch.Tensor], torch.Tensor]

_LOGNORMAL = ("the log-normal sampler's weights are not on the simplex, SDARTS' projection "
              "would change them")


def project_rows(weights: torch.Tensor) -> torch.Tensor:
    """The authors' ``clip``: per row (edge), clamp to [0, 1]; a row that is then all zero
    gets 1 at its arg-max (taken before clamping); divide by the row sum."""
    top = weights.argmax(dim=-1, keepdim=True)
    clamped = weights.clamp(0.0, 1.0)
    empty = clamped.sum(dim=-1, keepdim=True) == 0
    clamped = torch.where(empty & (torch.arange(weights.shape[-1], device=weights.device)
                                   == top), torch.ones_like(clamped), clamped)
    return clamped / clamped.sum(dim=-1, keepdim=True)


@contextlib.contextmanager
def replaced_mixing_weights(model: nn.Module, replace: Replace) -> Iterator[None]:
    """Within the block every call of ``model.arch_sampler`` returns its weights with
    ``ops`` replaced by ``replace(reduction, ops)``; α and the sampler are not touched."""

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        if getattr(output, "index", None) is not None:
            # A single-path pass (GDAS) evaluates one operation per edge; a perturbed
            # mixture of all of them is not something it can run.
            raise UsageError("SDARTS perturbs a mixture of every operation of an edge and "
                             "cannot run with a single-path (GDAS) relaxation")
        reduction = bool(args[1] if len(args) > 1 else kwargs.get("reduction", False))
        return dataclasses.replace(output, ops=replace(reduction, output.ops))

    handle = model.arch_sampler.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


class _SDARTS(Regularizer):
    """What both variants share: the ε schedule, the checks, no loss term."""

    name = ""
    spec = COMMON
    phases = frozenset()
    perturbs_arch = True
    reuses_step_graph = False

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = parse_options(self.name, self.spec, options)

    def setup(self, model: nn.Module) -> None:
        """Refuse a model without an arch sampler (not a supernet of a space)."""
        if not isinstance(getattr(model, "arch_sampler", None), nn.Module):
            raise UsageError(f"regularizer {self.name} needs a supernet with an arch sampler, "
                             f"got {type(model).__name__}")

    def active(self, epoch: int) -> bool:  # noqa: D102
        return epoch >= self.options["start_epoch"]

    def epsilon(self, epoch: int, total_epochs: int) -> float:
        """ε(e) = epsilon_start + (epsilon − epsilon_start)·e/E (the authors' ramp)."""
        o = self.options
        return o["epsilon_start"] + (o["epsilon"] - o["epsilon_start"]) * epoch / max(
            total_epochs, 1)


@REGULARIZERS.register("sdarts-rs")
class SDARTSRandom(_SDARTS):
    """SDARTS-RS: the weight step's mixing weights are P(w + δ), δ ~ U[-ε, ε] per step."""

    name = "sdarts-rs"
    incompatible = {"sdarts-adv": "both perturb the architecture of the weight step",
                    "lipschitz": _LOGNORMAL}

    @contextlib.contextmanager
    def perturb_arch(self, ctx: PerturbContext) -> Iterator[dict[str, float]]:
        """One uniform δ per cell kind, drawn at the step's first forward pass."""
        eps = self.epsilon(ctx.epoch, ctx.total_epochs)
        deltas: dict[bool, torch.Tensor] = {}

        def perturb(key: bool, ops: torch.Tensor) -> torch.Tensor:
            if key not in deltas:
                deltas[key] = torch.empty_like(ops).uniform_(-eps, eps)
            return project_rows(ops.detach() + deltas[key])

        with replaced_mixing_weights(ctx.model, perturb):
            yield {"epsilon": eps}


@REGULARIZERS.register("sdarts-adv")
class SDARTSAdversarial(_SDARTS):
    """SDARTS-ADV: δ from PGD on the training loss in the ε-ball, then as SDARTS-RS."""

    name = "sdarts-adv"
    spec = ADV
    incompatible = {"sdarts-rs": "both perturb the architecture of the weight step",
                    "lipschitz": _LOGNORMAL}

    def attack(self, ctx: PerturbContext, eps: float
               ) -> tuple[dict[bool, torch.Tensor], dict[bool, torch.Tensor], float, float]:
        """(clean weights ᾱ, PGD iterate, loss before, loss after) per cell kind, with the
        model in eval mode (the authors' ``Linf_PGD_alpha``)."""
        o = self.options
        saved: dict[bool, torch.Tensor] = {}
        current: dict[bool, torch.Tensor] = {}

        def capture(key: bool, ops: torch.Tensor) -> torch.Tensor:
            saved[key] = ops.detach()
            return ops

        def loss_with(replace: Replace) -> torch.Tensor:
            with replaced_mixing_weights(ctx.model, replace), ctx.autocast():
                return ctx.criterion(ctx.model(ctx.x), ctx.y).float()

        with _bn_mode(ctx.model, "eval"):
            with torch.no_grad():
                before = loss_with(capture)
            keys = list(saved)
            for key in keys:
                start = saved[key]
                if o["random_start"]:
                    start = project_rows(start + torch.empty_like(start).uniform_(-eps, eps))
                current[key] = start
            lr = 2 * eps / o["steps"]  # the authors' Linf_SGD learning rate
            for _ in range(o["steps"]):
                leaves = {k: current[k].detach().requires_grad_(True) for k in keys}
                with torch.enable_grad():
                    loss = loss_with(lambda key, ops, leaves=leaves: leaves[key])
                    grads = list(torch.autograd.grad(loss, [leaves[k] for k in keys]))
                if ctx.average is not None:
                    grads = ctx.average(grads)
                for k, g in zip(keys, grads):
                    ascended = leaves[k].detach() + lr * torch.sign(g)
                    current[k] = project_rows(
                        saved[k] + (ascended - saved[k]).clamp(-eps, eps))
            with torch.no_grad():
                after = loss_with(lambda key, ops: current[key])
        losses = [before.detach().reshape(1), after.detach().reshape(1)]
        if ctx.average is not None:
            losses = ctx.average(losses)
        return saved, current, float(losses[0]), float(losses[1])

    @contextlib.contextmanager
    def perturb_arch(self, ctx: PerturbContext) -> Iterator[dict[str, float]]:
        """PGD for δ first; then the weight step runs with P(w + δ)."""
        eps = self.epsilon(ctx.epoch, ctx.total_epochs)
        saved, current, before, after = self.attack(ctx, eps)
        kept = not before > after  # the authors drop a perturbation that lowered the loss
        deltas = {k: (current[k] - saved[k]) if kept else torch.zeros_like(saved[k])
                  for k in saved}

        def perturb(key: bool, ops: torch.Tensor) -> torch.Tensor:
            return project_rows(ops.detach() + deltas[key])

        with replaced_mixing_weights(ctx.model, perturb):
            yield {"epsilon": eps, "loss_gain": after - before, "kept": float(kept)}
