"""Batched white-box attacks in [0, 1] pixel space: PGD (L∞/L2, CE or CW-margin loss) and FGSM.

These functions are shared by evaluation and by adversarial training (PGD-AT, TRADES,
FGSM-RS), so they follow three rules:

* they never change ``model.train()``/``model.eval()``: the caller decides (adversarial
  training conventionally attacks in train mode, evaluation in eval mode);
* gradients are taken with :func:`torch.autograd.grad` with respect to the input only, so no
  ``.grad`` is ever left on the model's parameters;
* everything is batched: no Python loop over samples.

PGD follows Madry et al. (2018): a uniform random start in the ε-ball (optional), ``steps``
signed-gradient ascent steps of size ``step_size`` (L∞) or normalised-gradient steps (L2),
each followed by projection onto the ε-ball and onto [0, 1]; the final iterate is returned.
With ``restarts > 1`` the attack is rerun from fresh random starts on the samples that are
still classified correctly; per sample the first misclassifying example is kept, otherwise
the one with the highest loss.

The ``"cw"`` loss is the Carlini-Wagner margin ``max_{j≠y} z_j - z_y`` on the logits (the
"CW∞" attack of the TRADES/MART evaluations: PGD on the margin instead of cross-entropy).

FGSM is one signed-gradient step of size ε from the clean point (Goodfellow et al., 2015);
with ``random_start=True`` it is Wong et al.'s (2020) FGSM-RS: a uniform start in the ε-ball
and a step of ``step_size`` (default 1.25·ε), projected back onto the ε-ball.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("ce", "cw")
NORMS = ("linf", "l2")


def logits_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's logits (the first output when it returns (logits, aux_logits))."""
    out = model(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample CW margin ``max_{j≠y} z_j - z_y`` (positive iff misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.amax(dim=1) - true


def attack_loss(logits: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-sample loss that the attack maximises (``"ce"`` or ``"cw"``)."""
    logits = logits.float()
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if loss == "cw":
        return margin_loss(logits, y)
    raise ValueError(f"unknown attack loss {loss!r} (choose from {', '.join(LOSSES)})")


def _check(eps: float, loss: str, norm: str) -> None:
    if eps < 0:
        raise ValueError(f"eps must be non-negative, got {eps}")
    if loss not in LOSSES:
        raise ValueError(f"unknown attack loss {loss!r} (choose from {', '.join(LOSSES)})")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r} (choose from {', '.join(NORMS)})")


def _input_grad(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor,
                loss: str) -> torch.Tensor:
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        value = attack_loss(logits_of(model, x_adv), y, loss).sum()
        (grad,) = torch.autograd.grad(value, x_adv)
    return grad.detach()


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / _flat_norm(delta)).clamp(max=1.0)
    return (x + delta).clamp(0.0, 1.0)


def _random_start(x: torch.Tensor, eps: float, norm: str,
                  generator: torch.Generator | None) -> torch.Tensor:
    if norm == "linf":
        noise = torch.empty_like(x).uniform_(-eps, eps, generator=generator)
    else:
        # Uniform direction, radius ε·u^(1/d): uniform in the L2 ball.
        direction = torch.empty_like(x).normal_(generator=generator)
        direction = direction / _flat_norm(direction)
        d = x[0].numel()
        u = torch.empty(x.shape[0], device=x.device, dtype=x.dtype).uniform_(
            generator=generator)
        noise = direction * (eps * u.pow(1.0 / d)).view(-1, *([1] * (x.dim() - 1)))
    return (x + noise).clamp(0.0, 1.0)


def _ascent_step(x_adv: torch.Tensor, grad: torch.Tensor, step_size: float,
                 norm: str) -> torch.Tensor:
    if norm == "linf":
        return x_adv + step_size * grad.sign()
    return x_adv + step_size * grad / _flat_norm(grad)


def _pgd_once(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
              step_size: float, steps: int, random_start: bool, loss: str, norm: str,
              generator: torch.Generator | None) -> torch.Tensor:
    x_adv = _random_start(x, eps, norm, generator) if random_start else x.clone()
    for _ in range(steps):
        grad = _input_grad(model, x_adv, y, loss)
        x_adv = _project(_ascent_step(x_adv, grad, step_size, norm), x, eps, norm)
    return x_adv.detach()


def pgd_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
               step_size: float, steps: int, *, random_start: bool = True, restarts: int = 1,
               loss: str = "ce", norm: str = "linf",
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient ascent on ``loss`` within the ``norm`` ε-ball around ``x``.

    Args:
        model: maps images in [0, 1] to logits (or to ``(logits, aux)``); its train/eval
            mode is left untouched.
        x: clean images in [0, 1], shape ``(N, ...)``; y: labels ``(N,)``.
        eps: radius of the ball (pixel scale, e.g. 8/255); step_size: per-step size.
        steps: number of ascent steps (0 gives the random start, or ``x`` without one).
        random_start: start from a uniform point of the ball (Madry et al.).
        restarts: independent runs; later runs only attack samples not yet fooled.
        loss: ``"ce"`` (cross-entropy) or ``"cw"`` (margin ``max_{j≠y} z_j - z_y``).
        norm: ``"linf"`` or ``"l2"``.
        generator: optional RNG for the random starts (reproducible attacks).

    Returns:
        Detached adversarial images in [0, 1] with ``‖x_adv - x‖ ≤ eps``.
    """
    _check(eps, loss, norm)
    if restarts < 1 or steps < 0:
        raise ValueError("restarts must be >= 1 and steps >= 0")
    x = x.detach()
    if eps == 0 or x.shape[0] == 0:
        return x.clone()
    best = _pgd_once(model, x, y, eps, step_size, steps, random_start, loss, norm, generator)
    if restarts == 1:
        return best
    with torch.no_grad():
        logits = logits_of(model, best).float()
        fooled = logits.argmax(1) != y
        best_loss = attack_loss(logits, y, loss)
    for _ in range(restarts - 1):
        todo = (~fooled).nonzero().squeeze(1)
        if todo.numel() == 0:
            break
        cand = _pgd_once(model, x[todo], y[todo], eps, step_size, steps, random_start, loss,
                         norm, generator)
        with torch.no_grad():
            logits = logits_of(model, cand).float()
            cand_fooled = logits.argmax(1) != y[todo]
            cand_loss = attack_loss(logits, y[todo], loss)
        take = cand_fooled | (cand_loss > best_loss[todo])
        idx = todo[take]
        best[idx] = cand[take]
        best_loss[idx] = cand_loss[take]
        fooled[idx] = cand_fooled[take]
    return best


def fgsm_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                random_start: bool = False, step_size: float | None = None,
                loss: str = "ce", generator: torch.Generator | None = None) -> torch.Tensor:
    """Fast gradient sign method (L∞); FGSM-RS (Wong et al., 2020) with ``random_start``.

    Without a random start the step is ``step_size`` (default ε) from the clean point; with
    one it starts uniformly in the ε-ball and steps ``step_size`` (default 1.25·ε). The
    result is projected onto the ε-ball and [0, 1]. Mode and parameter gradients untouched.
    """
    _check(eps, loss, "linf")
    x = x.detach()
    if eps == 0 or x.shape[0] == 0:
        return x.clone()
    if step_size is None:
        step_size = 1.25 * eps if random_start else eps
    start = _random_start(x, eps, "linf", generator) if random_start else x
    grad = _input_grad(model, start, y, loss)
    return _project(_ascent_step(start, grad, step_size, "linf"), x, eps, "linf").detach()
