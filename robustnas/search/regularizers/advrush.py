"""AdvRush (Mok et al., "AdvRush: Searching for Adversarially Robust Neural Architectures",
ICCV 2021): prefer architectures with a smooth input loss.

The term is a finite-difference estimate of the input-Hessian curvature along a sign
direction (CURE-style), added to the α loss:

    R = (1/B) Σ_i ‖∇ᵤℓ_i(u_i + z_i) − ∇ᵤℓ_i(u_i)‖₂,   z_i = h·sign(g_i)/‖sign(g_i)‖₂,
    term = γ·λ·R   (γ = 0.01, λ = 4),

with ℓ_i the cross-entropy of sample i (summed, so per-sample gradients are not divided by
B) and g_i = ∇ᵤℓ_i(u_i) from a separate pass, detached. R ≈ h·‖H z/h‖ for small h. It is
built with ``create_graph=True`` so α gets its gradient by double backprop; the search loop
differentiates the α loss with respect to α only, so the weights never see it (unless
``apply_to_weights``, see below).

**Units.** u is the *normalised* input, as in the paper and official code (h = 1.5 there;
1.5 normalised units ≈ 0.37 in [0, 1] pixel units on CIFAR-10). Models here take pixels
x ∈ [0, 1] and normalise inside, u = (x − m)/s per channel, so the regulariser works in
pixel space and converts exactly:

* the direction is the same (s > 0, so sign(∇ᵤℓ) = sign(∇ₓℓ)); z is built in normalised
  space with ‖z_i‖₂ = h and applied to the pixels as x + s ⊙ z (≡ u + z exactly);
* gradients convert as ∇ᵤℓ = s ⊙ ∇ₓℓ, so R is measured in normalised units and γ·λ keep
  the paper's meaning.

``h_pixels`` gives the radius in pixel units instead: the *pixel-space* perturbation
s ⊙ z_i has ℓ2 norm h_pixels, i.e. h_i = h_pixels / ‖s ⊙ d_i‖₂ with d_i the unit sign
direction (= h_pixels / s for one channel or equal stds); direction and R stay as above.
A model without a :class:`~robustnas.space.common.Normalize` layer is taken to see
normalised inputs directly (s = 1). Giving both h and h_pixels is an error, except that
``--reg-opt advrush.h_pixels=…`` on the command line replaces an ``h`` from the config
file (and vice versa).

**BN.** Both passes run with the whole model in eval mode by default (``bn_mode: eval``, as
the official code does): per-sample gradients are then truly per sample, and a log-normal
arch sampler uses its median. ``bn_mode: train`` uses batch statistics (samples are then
coupled through BN); running statistics are restored afterwards so the extra passes do not
count as training steps. The perturbed and clean batches go through *one* forward pass
(concatenated), so in train mode they share one α sample.

**Schedule.** On from ``start_epoch`` (default 50 of 60 epochs). ``h_ramp`` scales h by
[0, .2, .4, .6, .8, 1] (the official [0, .3, .6, .9, 1.2, 1.5] for h = 1.5) over the
first six epochs *after* ``start_epoch``; the official code indexes that list by absolute
epoch, so there the ramp is over long before the regulariser starts.

**Deviations from the official code** (the authors' public code, nutellamok/advrush), all
deliberate:

* the training/eval mode of every module is restored after the term (the official code
  leaves the model in eval mode, so the following weight step ran BN in eval mode);
* the direction pass takes ∇ₓ with ``torch.autograd.grad`` on the input only (the official
  ``backward()`` also accumulated a CE gradient into α's ``.grad``);
* the α batch comes from the validation split (the search loop's job; the official code
  re-drew the first batch of the training set every step);
* the direction is exactly sign(g)/‖sign(g)‖ (the official code added 1e-7 to both).

``apply_to_weights`` adds ``weights_gamma · R`` to the weight step too (the official
``w_gamma`` = 1e-4 with λ = 1, which its default schedule never switched on).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.errors import UsageError
from robustnas.search.regularizers._options import Option, parse_options
from robustnas.search.regularizers.base import REGULARIZERS, Regularizer, StepContext
from robustnas.space.normalize import Normalize

#: The official ramp of h by epoch, for h = 1.5.
H_RAMP = (0.0, 0.3, 0.6, 0.9, 1.2, 1.5)

OPTIONS = {
    "gamma": Option(float, 0.01, "non-negative", lambda v: v >= 0),
    "lam": Option(float, 4.0, "non-negative", lambda v: v >= 0),
    "h": Option(float, 1.5, "non-negative", lambda v: v >= 0),
    "h_pixels": Option(float, None, "non-negative", lambda v: v >= 0, optional=True),
    "start_epoch": Option(int, 50, "0 or more", lambda v: v >= 0),
    "h_ramp": Option(bool, False),
    "bn_mode": Option(str, "eval", choices=("eval", "train")),
    "apply_to_weights": Option(bool, False),
    "weights_gamma": Option(float, 1e-4, "non-negative", lambda v: v >= 0),
}


@dataclass
class CurvatureEstimate:
    """R with its parts: per-sample values, radii (normalised units), the pixel-space z."""

    value: torch.Tensor
    per_sample: torch.Tensor
    radius: torch.Tensor
    grad_norm: torch.Tensor
    z_pixels: torch.Tensor


def input_std(model: nn.Module, like: torch.Tensor) -> torch.Tensor:
    """The per-channel std of the model's Normalize layer, shaped (1, C, 1, 1); 1 if none."""
    for module in model.modules():
        if isinstance(module, Normalize):
            return module.std.to(like)
    return like.new_ones(())


@contextlib.contextmanager
def _bn_mode(model: nn.Module, mode: str) -> Iterator[None]:
    """Set the model's mode for the regulariser; restore flags (and BN statistics) after."""
    flags = {m: m.training for m in model.modules()}
    saved = []
    if mode == "train":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                saved.append((m, [b.detach().clone() if b is not None else None for b in
                                  (m.running_mean, m.running_var, m.num_batches_tracked)]))
    try:
        model.train(mode == "train")
        yield
    finally:
        for m, flag in flags.items():
            m.training = flag
        with torch.no_grad():
            for m, buffers in saved:
                for own, old in zip((m.running_mean, m.running_var, m.num_batches_tracked),
                                    buffers):
                    if own is not None:
                        own.copy_(old)


def input_curvature(model: nn.Module, x: torch.Tensor, y: torch.Tensor, h: float, *,
                    pixel_units: bool = False, bn_mode: str = "eval",
                    create_graph: bool = True) -> CurvatureEstimate:
    """AdvRush's R for inputs ``x`` in [0, 1]; see the module docstring for units and modes.

    With ``create_graph`` the result has a graph to every parameter the model used (α and
    w); parameters' ``.grad`` fields are never touched.
    """
    if bn_mode not in ("eval", "train"):
        raise UsageError(f"bn_mode must be eval or train, got {bn_mode!r}")
    x = x.detach()
    std = input_std(model, x)
    batch = x.shape[0]
    with _bn_mode(model, bn_mode), torch.enable_grad():
        probe = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(probe), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, [probe])
        grad_norm = (grad * std).flatten(1).norm(dim=1)
        direction = torch.sign(grad)
        direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1.0).view(
            -1, *([1] * (x.dim() - 1)))
        if pixel_units:
            scale = (direction * std).flatten(1).norm(dim=1).clamp_min(1e-12)
            radius = torch.where(scale > 1e-12, h / scale, torch.zeros_like(scale))
        else:
            radius = x.new_full((batch,), float(h))
        z_norm = direction * radius.view(-1, *([1] * (x.dim() - 1)))
        z_pixels = (z_norm * std).detach()
        inputs = x.clone().requires_grad_(True)
        losses = F.cross_entropy(model(torch.cat([inputs + z_pixels, inputs])),
                                 torch.cat([y, y]), reduction="none")
        diff = losses[:batch].sum() - losses[batch:].sum()
        (grad_diff,) = torch.autograd.grad(diff, [inputs], create_graph=create_graph)
        per_sample = (grad_diff * std).flatten(1).norm(dim=1)
    return CurvatureEstimate(per_sample.mean(), per_sample, radius.detach(),
                             grad_norm.detach(), z_pixels)


@REGULARIZERS.register("advrush")
class AdvRush(Regularizer):
    """γ·λ·R on the α step from ``start_epoch`` on (and ``weights_gamma``·R on w if asked)."""

    #: Options that state the same quantity: one given on the command line replaces the
    #: other from a config file (the CLI reads this).
    alternative_options = {"h": ("h_pixels",), "h_pixels": ("h",)}

    def __init__(self, **options: Any) -> None:
        super().__init__()
        o = parse_options("advrush", OPTIONS, options)
        if o["h_pixels"] is not None and "h" in options:
            raise UsageError("regularizer advrush: give h (normalised units) or h_pixels "
                             "(pixel units), not both")
        self.options = o
        self.phases = frozenset({"arch", "weights"} if o["apply_to_weights"] else {"arch"})

    #: R comes from its own forward passes; ``ctx.loss`` only gives the dtype.
    reuses_step_graph = False

    def active(self, epoch: int) -> bool:  # noqa: D102
        return epoch >= self.options["start_epoch"]

    def effective(self, epoch: int) -> bool:  # noqa: D102
        return self.active(epoch) and self.radius(epoch) > 0

    def radius(self, epoch: int) -> float:
        """h at ``epoch`` in the configured units (h or h_pixels), with the ramp applied."""
        o = self.options
        h = o["h_pixels"] if o["h_pixels"] is not None else o["h"]
        if o["h_ramp"]:
            offset = max(0, epoch - o["start_epoch"])
            h = h * H_RAMP[min(offset, len(H_RAMP) - 1)] / H_RAMP[-1]
        return h

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        """γ·λ·R (α step) or weights_gamma·R (w step), and R, h to log."""
        o = self.options
        h = self.radius(ctx.epoch)
        est = input_curvature(ctx.model, ctx.x, ctx.y, h, pixel_units=o["h_pixels"] is not None,
                              bn_mode=o["bn_mode"])
        scale = o["gamma"] * o["lam"] if ctx.phase == "arch" else o["weights_gamma"]
        logs = {"R": float(est.value.detach()), "h": h,
                "h_normalized": float(est.radius.mean()),
                "input_grad_norm": float(est.grad_norm.mean())}
        return scale * est.value.to(ctx.loss.dtype), logs
