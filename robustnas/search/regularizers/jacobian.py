"""Input-Jacobian regularisation (Hoffman, Roberts & Yaida, 2019, "Robust Learning with
Jacobian Regularization"; the Jacobian variant of DSRNA's robustness terms).

The term is half the squared Frobenius norm of the Jacobian of the logits z = f(x) with
respect to the input, averaged over the batch, estimated with random projections:

    R = (1/2) · C/(n·B) · Σ_{p=1..n} Σ_b ‖ vₚ,ᵦᵀ ∂z_b/∂x_b ‖²,   vₚ,ᵦ uniform on the unit sphere
    in the C-dimensional logit space,

an unbiased estimate of (1/(2B)) Σ_b ‖∂z_b/∂x_b‖²_F (E[v vᵀ] = I/C); ``projections: -1``
uses the C orthonormal directions and gives the exact value. Built with
``create_graph=True``, so α (on the α step) or the weights (``on: weights``) get its
gradient by double backprop; it is the cheapest input-smoothness term (one extra forward
and one Jacobian-vector product per projection) and a natural baseline for AdvRush.

**Units and defaults.** x is the pixel input in [0, 1] (models normalise inside); the
authors' code differentiates with respect to whatever the network takes. λ = 0.01 (the
authors' MNIST/CIFAR examples use λ_JR = 0.01), one projection (the authors' default,
"sufficient for any reasonable batch size"), from epoch 0. BN: the extra forward runs in
eval mode by default, so the samples' Jacobians do not couple through batch statistics
(``bn_mode: train`` uses batch statistics; running statistics are restored afterwards).
Checked against the authors' formula (``jacobian/jacobian.py``: C·‖Jv‖²/(n·B)/2) on
identical inputs and directions in ``tests/test_stability_regularizers.py``.
"""

from __future__ import annotations

from typing import Any

import torch

from robustnas.search.regularizers._options import Option, parse_options
from robustnas.search.regularizers.advrush import _bn_mode
from robustnas.search.regularizers.base import REGULARIZERS, Regularizer, StepContext

OPTIONS = {
    "lam": Option(float, 0.01, "non-negative", lambda v: v >= 0),
    "projections": Option(int, 1, "-1 (exact) or at least 1", lambda v: v == -1 or v >= 1),
    "on": Option(str, "arch", choices=("arch", "weights", "both")),
    "start_epoch": Option(int, 0, "0 or more", lambda v: v >= 0),
    "bn_mode": Option(str, "eval", choices=("eval", "train")),
}


def random_directions(batch: int, classes: int, like: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """One unit vector per sample in logit space (a normalised Gaussian), shape (B, C)."""
    v = torch.randn(batch, classes, generator=generator, dtype=like.dtype).to(like.device)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


def jacobian_penalty(model: torch.nn.Module, x: torch.Tensor, projections: int = 1, *,
                     directions: list[torch.Tensor] | None = None,
                     create_graph: bool = True) -> torch.Tensor:
    """R = (1/2)·C/(n·B)·Σ ‖vᵀJ‖² for inputs ``x`` (see the module docstring).

    ``projections = -1`` is exact (the C unit directions); ``directions`` (a list of (B, C)
    tensors) fixes the random ones, for tests."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        if isinstance(logits, tuple):  # (logits, auxiliary logits)
            logits = logits[0]
        batch, classes = logits.shape
        if directions is None:
            if projections == -1:
                eye = torch.eye(classes, dtype=logits.dtype, device=logits.device)
                directions = [eye[c].expand(batch, classes) for c in range(classes)]
            else:
                directions = [random_directions(batch, classes, logits)
                              for _ in range(projections)]
        total = logits.new_zeros(())
        for i, v in enumerate(directions):
            (jv,) = torch.autograd.grad(logits, x, v, create_graph=create_graph,
                                        retain_graph=create_graph or i + 1 < len(directions))
            total = total + jv.pow(2).sum()
    return 0.5 * classes * total / (len(directions) * batch)


@REGULARIZERS.register("jacobian")
class JacobianNorm(Regularizer):
    """λ · R on the α step (or the weight step, ``on: weights``; both: ``on: both``)."""

    reuses_step_graph = False  # R comes from its own forward pass

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = parse_options("jacobian", OPTIONS, options)
        on = self.options["on"]
        self.phases = frozenset({"arch", "weights"} if on == "both" else {on})

    def active(self, epoch: int) -> bool:  # noqa: D102
        return epoch >= self.options["start_epoch"]

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        """λ·R and R to log."""
        with _bn_mode(ctx.model, self.options["bn_mode"]):
            value = jacobian_penalty(ctx.model, ctx.x, self.options["projections"])
        return self.options["lam"] * value.to(ctx.loss.dtype), {"R": float(value.detach())}
