"""croze (Ha, Kim & Hwang, "Generalizable Lightweight Proxy for Robust NAS against Diverse
Perturbations", NeurIPS 2023): how consistent a network is with a surrogate of its robust
counterpart, in weights, gradients and features.

Following the authors' code (``croze`` measure): both networks are made absolute and float64
(synflow's linearisation). The surrogate θ* adds to each weight tensor θ_l (2-D and more)
w·‖θ_l‖/‖Δ_l‖·Δ_l, w = 2, where Δ is one SGD step (lr 1e-3) that *increases* the
cross-entropy on the batch (an adversarial weight perturbation); its input is
x* = clip(x − 0.01·sign(∇ₓ CE(θ*(x))), 0, 1) (the authors' FGSM step, whose sign we keep).
After one backward pass of CE(θ(x)) + CE(θ*(x*)), every convolution and linear layer scores

    | Σ(1 + cos₀(W*, W)) · Σ|cos₀(∂W*, ∂W)| · Σ(1 + cos₀(z*, z)) |,

cos₀ the cosine similarity along dimension 0 (``nn.CosineSimilarity(dim=0)``: over output
channels for weights, over the batch for features), and the network the sum over layers.
Train mode throughout.

Deviation: the authors' features z are their networks' per-stage outputs
(``return_activated_feats``: for NAS-Bench-201 one per group of five cells, the logits for
the classifier); space-specific code we do not have. Here z is the layer's own output (a
forward hook), so the feature term is per layer, not per stage; the weight and gradient
terms are the authors'.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy, weight_layers

PERTURB_SCALE = 2.0
SGD_LR = 1e-3
FGSM_EPS = 0.01
_EPS = 1e-30


def linearise(model: nn.Module) -> nn.Module:
    """Absolute values of every parameter and buffer, in float64."""
    model.double()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.abs_()
    return model


def perturb_weights(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    scale: float = PERTURB_SCALE) -> None:
    """Add ``scale``·‖θ‖/‖Δ‖·Δ to each weight tensor of ≥ 2 dimensions, Δ one SGD step that
    increases the cross-entropy (computed on a copy)."""
    probe = copy.deepcopy(model).train()
    probe.zero_grad()
    (-F.cross_entropy(probe(x), y)).backward()
    new = {}
    with torch.no_grad():
        for name, p in probe.named_parameters():
            if p.grad is not None:
                new[name] = p - SGD_LR * p.grad
        for name, p in model.named_parameters():
            if p.dim() > 1 and "weight" in name and name in new:
                delta = new[name] - p
                p.add_(scale * p.norm() / (delta.norm() + _EPS) * delta)


def fgsm_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              eps: float = FGSM_EPS) -> torch.Tensor:
    """The authors' one-step input perturbation x − eps·sign(∇ₓ CE), clipped to [0, 1]."""
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return (x - eps * x.grad.sign()).clamp(0, 1).detach()


def _forward_keeping_outputs(model: nn.Module, x: torch.Tensor
                             ) -> tuple[torch.Tensor, dict[nn.Module, torch.Tensor]]:
    outs: dict[nn.Module, torch.Tensor] = {}

    def keep(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        outs.setdefault(module, out)  # a layer called twice: its first call

    handles = [layer.register_forward_hook(keep) for layer in weight_layers(model)]
    try:
        logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return logits, outs


@register_proxy("croze", "Ha et al., NeurIPS 2023",
                "consistency with a robust surrogate (weights, gradients, features)")
def croze(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """The CRoZe score at initialisation."""
    model.train()
    surrogate = linearise(copy.deepcopy(model)).train()
    linearise(model)
    x = x.double()
    perturb_weights(surrogate, x, y)
    x_adv = fgsm_step(surrogate, x, y)
    model.zero_grad()
    surrogate.zero_grad()
    logits, feats = _forward_keeping_outputs(model, x)
    logits_adv, feats_adv = _forward_keeping_outputs(surrogate, x_adv)
    (F.cross_entropy(logits, y) + F.cross_entropy(logits_adv, y)).backward()
    cos = nn.CosineSimilarity(dim=0)
    total = 0.0
    with torch.no_grad():
        for layer, twin in zip(weight_layers(model), weight_layers(surrogate)):
            if layer.weight.grad is None or twin.weight.grad is None or layer not in feats:
                continue
            w_sim = (1 + cos(twin.weight, layer.weight)).sum()
            g_sim = cos(twin.weight.grad, layer.weight.grad).abs().sum()
            f_sim = (1 + cos(feats_adv[twin], feats[layer])).sum()
            total += float((w_sim * g_sim * f_sim).abs())
    return total
