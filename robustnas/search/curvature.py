"""Curvature probes: Hessian-vector products and the dominant Hessian eigenvalue.

:func:`hessian_top_eigenvalue` runs power iteration with exact Hessian-vector products
(double backprop), so it works for any twice-differentiable scalar loss and any list of
tensors that require grad. The search uses it twice:

* the *input* Hessian of the supernet loss (``params=[x]`` with ``x.requires_grad_()``), a
  proxy for the smoothness of the input loss landscape that AdvRush regularises;
* the Hessian of the validation loss with respect to the architecture parameters, whose
  growth RobustDARTS uses to detect DARTS collapse (see :mod:`robustnas.search.collapse`).

Power iteration converges to the eigenvalue of largest *magnitude*; it is returned with its
sign (the Rayleigh quotient of the final vector). For a loss whose Hessian has a large
negative eigenvalue this is that negative value, which is what "dominant" means in
RobustDARTS. Convergence is linear in the ratio of the two largest magnitudes, so ``iters``
is a cap; the loop stops early once successive estimates agree within ``tol`` (relative).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((x.double() * y.double()).sum() for x, y in zip(a, b))  # type: ignore[return-value]


def hessian_vector_product(grads: Sequence[torch.Tensor | None],
                           params: Sequence[torch.Tensor],
                           vector: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """H·v from first derivatives ``grads`` that were computed with ``create_graph=True``.

    Entries of ``grads`` that are ``None`` or carry no graph contribute nothing (their
    rows of the Hessian are zero). The graph of ``grads`` is kept, so this can be called
    repeatedly with different vectors.
    """
    pairs = [(g, v) for g, v in zip(grads, vector) if g is not None and g.requires_grad]
    if not pairs:
        return [torch.zeros_like(p) for p in params]
    out = torch.autograd.grad([g for g, _ in pairs], list(params),
                              grad_outputs=[v.to(g.dtype) for g, v in pairs],
                              retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if h is None else h.detach() for h, p in zip(out, params)]


def hessian_top_eigenvalue(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor],
                           iters: int = 20, tol: float = 1e-3,
                           generator: torch.Generator | None = None) -> float:
    """Dominant eigenvalue of the Hessian of ``loss_fn()`` with respect to ``params``.

    ``loss_fn`` takes no arguments and returns a scalar whose graph reaches ``params``
    (tensors with ``requires_grad=True``: model parameters, α, or an input batch). The
    start vector is drawn from ``generator`` (a CPU generator; the global RNG when None)
    so the estimate is reproducible. Returns 0.0 when the Hessian is zero.
    """
    params = list(params)
    if iters < 1:
        raise ValueError("iters must be at least 1")
    with torch.enable_grad():
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        vector = [torch.randn(p.shape, generator=generator, dtype=torch.float64)
                  .to(device=p.device, dtype=p.dtype) for p in params]
        norm = float(_dot(vector, vector)) ** 0.5
        vector = [v / norm for v in vector]
        estimate: float | None = None
        for _ in range(iters):
            hv = hessian_vector_product(grads, params, vector)
            value = float(_dot(vector, hv))
            norm = float(_dot(hv, hv)) ** 0.5
            if norm == 0.0:
                return 0.0
            vector = [h / norm for h in hv]
            if estimate is not None and abs(value - estimate) <= tol * max(abs(value), 1e-12):
                return value
            estimate = value
    return float(estimate)
