"""Robustness measures that need no attack (Jung et al., "Neural Architecture Design and
Robustness: A Dataset", ICLR 2023) and HRS (Devaguptapu et al., "On Adversarial Robustness:
A Neural Architecture Search perspective", ICCV Workshops 2021).

* :func:`jacobian_frobenius`: per-sample ``‖∂f(x)/∂x‖_F`` of the input–output Jacobian, with
  ``f`` the logits (default) or the softmax probabilities. Exact by default: one backward
  pass per output class (``K`` passes for the whole batch). With ``projections=m`` it
  uses the random-projection estimator ``‖J‖_F² ≈ (1/m) Σ_j ‖Jᵀ v_j‖²``, ``v_j ~ N(0, I_K)``,
  which is unbiased for the *squared* norm (we report its square root, which is therefore
  slightly biased low, by Jensen); it costs ``m`` backward passes.
* :func:`hessian_top_eigenvalue`: per-sample largest eigenvalue of the input Hessian of the
  cross-entropy loss ``∇²ₓ ℓ(f(x), y)``, by power iteration on Hessian-vector products
  (double backpropagation). Power iteration finds the eigenvalue of largest magnitude; if
  that one is negative, a second, shifted iteration on ``H - λ I`` recovers the largest
  (algebraic) one. For piecewise-linear networks (ReLU, max-pool, eval-mode BN) the
  input Hessian is ``Jᵀ (diag(p) - p pᵀ) J`` and positive semi-definite, so one pass suffices.
* :func:`harmonic_robustness_score`: HRS = 2·C·R / (C + R) (Devaguptapu et al.).

Per-sample figures rely on samples not interacting, i.e. on the model being in eval mode
(batch-norm with running statistics); the functions do not change the mode themselves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.attacks.pgd import logits_of


def harmonic_robustness_score(clean: float, robust: float) -> float:
    """HRS = 2·C·R / (C + R), in the units of its inputs (0 when both are 0)."""
    total = clean + robust
    return 0.0 if total <= 0 else 2.0 * clean * robust / total


def _outputs(model: nn.Module, x: torch.Tensor, output: str) -> torch.Tensor:
    logits = logits_of(model, x).float()
    if output == "logits":
        return logits
    if output == "probs":
        return torch.softmax(logits, dim=1)
    raise ValueError(f"output must be 'logits' or 'probs', got {output!r}")


def jacobian_frobenius(model: nn.Module, x: torch.Tensor, *, output: str = "logits",
                       projections: int | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample Frobenius norm of the Jacobian of ``output`` w.r.t. the input, shape (N,).

    Exact (``projections=None``) or the random-projection estimate with ``projections``
    Gaussian vectors (see the module docstring).
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = _outputs(model, x, output)
        n, k = out.shape
        total = torch.zeros(n, device=x.device)
        if projections is None:
            for c in range(k):
                (g,) = torch.autograd.grad(out[:, c].sum(), x, retain_graph=c < k - 1)
                total += g.flatten(1).pow(2).sum(1)
        else:
            if projections < 1:
                raise ValueError("projections must be >= 1")
            for j in range(projections):
                v = torch.randn(n, k, device=x.device, generator=generator)
                (g,) = torch.autograd.grad((out * v).sum(), x,
                                           retain_graph=j < projections - 1)
                total += g.flatten(1).pow(2).sum(1)
            total /= projections
    return total.sqrt().detach()


def _normalise(v: torch.Tensor) -> torch.Tensor:
    norms = v.flatten(1).norm(dim=1).clamp_min(1e-20)
    return v / norms.view(-1, *([1] * (v.dim() - 1)))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(1)


def hessian_top_eigenvalue(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                           iters: int = 20, tol: float = 1e-4,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample largest eigenvalue of ``∇²ₓ CE(f(x), y)``, shape (N,).

    Batched power iteration: since the summed loss is a sum of per-sample terms, its input
    Hessian is block diagonal, so one Hessian-vector product serves every sample. Stops
    after ``iters`` iterations or when every estimate changes by less than ``tol``
    (relative).
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(logits_of(model, x).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x, create_graph=True)

        def hvp(v: torch.Tensor) -> torch.Tensor:
            (hv,) = torch.autograd.grad(grad, x, grad_outputs=v, retain_graph=True)
            return hv.detach()

        def power(shift: torch.Tensor) -> torch.Tensor:
            scale = shift.view(-1, *([1] * (x.dim() - 1)))
            v = _normalise(torch.randn(x.shape, device=x.device, generator=generator))
            lam = torch.zeros(x.shape[0], device=x.device)
            for _ in range(max(1, iters)):
                hv = hvp(v) - scale * v
                new = _dot(v, hv)
                v = _normalise(hv)
                done = ((new - lam).abs() <= tol * new.abs().clamp_min(1e-12)).all()
                lam = new
                if done:
                    break
            return lam

        dominant = power(torch.zeros(x.shape[0], device=x.device))
        if (dominant < 0).any():
            shift = dominant.clamp(max=0.0)
            dominant = power(shift) + shift
    return dominant.detach()
