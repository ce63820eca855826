"""Operator norms (ℓ2 → ℓ2 Lipschitz constants) of the layers inside candidate operations,
by power iteration (estimates that track changing weights) or exact formulas.

* Convolutions: power iteration on the actual operator at the feature-map size, the forward
  map being ``conv2d`` and its adjoint ``conv_transpose2d`` with the output padding that
  restores the input size. The vector is persistent (passed in and returned), so one or a
  few iterations per search step track the slowly changing weights, as in spectral
  normalisation (Miyato et al., 2018). The estimate ‖Aᵀu‖ with ‖u‖ = 1 is a lower bound
  that converges to the largest singular value.
* Depthwise convolutions are block-diagonal over channels; :func:`conv_power_iteration`
  with ``per_channel=True`` normalises each channel on its own and returns one norm per
  channel, which lets many depthwise convolutions of the same geometry be stacked into a
  single grouped convolution and iterated at once.
* 1×1 convolutions (padding 0) act on each pixel as the same matrix W, so their norm is
  ‖W‖₂ for any stride (a stride only drops pixels); :func:`matrix_power_iteration`
  iterates a batch of such matrices at once.
* Pooling: ``avg_pool_3x3`` (``count_include_pad=False``) is linear and separable,
  A = A_h ⊗ A_w, so its norm is ‖A_h‖₂·‖A_w‖₂, computed exactly from the explicit 1-D
  matrices (:func:`avg_pool_norm`). Near the border the divisor shrinks, so the norm is a
  little above 1: 1.0145 at 8×8, stride 1 (1.0285 at 4×4, 1.0047 at 32×32; the same as an
  explicit SVD of the 2-D operator). Max pooling is non-linear; with overlapping
  windows the exact ℓ2 Lipschitz constant is √(max number of windows covering one pixel)
  = √(c_h·c_w): ‖mp(x) − mp(y)‖² ≤ Σ_windows max_k |x_k − y_k|² ≤ Σ_k c(k)|x_k − y_k|²,
  with equality for a single-pixel difference. That is 3 for a 3×3 stride-1 pool and 2 at
  stride 2 (:func:`max_pool_bound`). The often quoted "pooling is 1-Lipschitz" holds in
  ℓ∞, not in ℓ2; it is available as the ``paper`` convention.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_EPS = 1e-12


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[-1])


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Spatial output size of a convolution or pooling along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _output_padding(size: int, out: int, kernel: int, stride: int, padding: int,
                    dilation: int) -> int:
    return size - ((out - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1)


def _normalize(t: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if per_channel:
        norm = t.flatten(2).norm(dim=2).sum(0)  # batch is 1: one norm per channel
        return t / norm.clamp_min(_EPS).view(1, -1, 1, 1), norm
    norm = t.norm()
    return t / norm.clamp_min(_EPS), norm


def conv_power_iteration(weight: torch.Tensor, vector: torch.Tensor, *, stride: int | tuple = 1,
                         padding: int | tuple = 0, dilation: int | tuple = 1, groups: int = 1,
                         iters: int = 1, per_channel: bool = False
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Power iteration for the largest singular value of a convolution at ``vector``'s size.

    ``vector`` has shape (1, C_in, H, W). Returns ``(sigma, vector)``: sigma is a scalar, or
    one value per channel with ``per_channel=True`` (depthwise weights, ``groups = C_in =
    C_out``); the returned vector is the input for the next call. Runs without autograd.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    kernel = weight.shape[-2:]
    size = vector.shape[-2:]
    out = [conv_output_size(size[i], kernel[i], stride[i], padding[i], dilation[i])
           for i in range(2)]
    out_pad = tuple(_output_padding(size[i], out[i], kernel[i], stride[i], padding[i],
                                    dilation[i]) for i in range(2))
    sigma = vector.new_zeros(vector.shape[1] if per_channel else ())
    with torch.no_grad():
        v, _ = _normalize(vector, per_channel)
        for _ in range(max(iters, 1)):
            u, _ = _normalize(F.conv2d(v, weight, None, stride, padding, dilation, groups),
                              per_channel)
            t = F.conv_transpose2d(u, weight, None, stride, padding, out_pad, groups, dilation)
            t_unit, sigma = _normalize(t, per_channel)
            # A zero channel (all-zero kernel) keeps its old vector instead of collapsing.
            keep = (sigma > _EPS).view(1, -1, 1, 1) if per_channel else sigma > _EPS
            v = torch.where(keep, t_unit, v)
    return sigma, v


def matrix_power_iteration(matrices: torch.Tensor, vector: torch.Tensor,
                           iters: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched power iteration: ``matrices`` (n, m, k), ``vector`` (n, k) → (σ (n,), vector)."""
    with torch.no_grad():
        v = vector / vector.norm(dim=1, keepdim=True).clamp_min(_EPS)
        sigma = v.new_zeros(v.shape[0])
        for _ in range(max(iters, 1)):
            u = torch.bmm(matrices, v.unsqueeze(-1)).squeeze(-1)
            u = u / u.norm(dim=1, keepdim=True).clamp_min(_EPS)
            t = torch.bmm(matrices.transpose(1, 2), u.unsqueeze(-1)).squeeze(-1)
            sigma = t.norm(dim=1)
            v = torch.where((sigma > _EPS).unsqueeze(1), t / sigma.clamp_min(_EPS).unsqueeze(1), v)
    return sigma, v


def _avg_pool_matrix(size: int, kernel: int, stride: int, padding: int,
                     count_include_pad: bool) -> torch.Tensor:
    out = conv_output_size(size, kernel, stride, padding, 1)
    mat = torch.zeros(out, size, dtype=torch.float64)
    for o in range(out):
        lo, hi = o * stride - padding, o * stride - padding + kernel - 1
        valid = [i for i in range(lo, hi + 1) if 0 <= i < size]
        divisor = kernel if count_include_pad else len(valid)
        for i in valid:
            mat[o, i] = 1.0 / divisor
    return mat


def avg_pool_norm(height: int, width: int, kernel: int = 3, stride: int = 1, padding: int = 1,
                  count_include_pad: bool = False) -> float:
    """Exact ℓ2 operator norm of ``avg_pool2d`` on a height×width map (separable)."""
    norms = [torch.linalg.matrix_norm(_avg_pool_matrix(n, kernel, stride, padding,
                                                       count_include_pad), ord=2)
             for n in (height, width)]
    return float(norms[0] * norms[1])


def _coverage(size: int, kernel: int, stride: int, padding: int) -> int:
    out = conv_output_size(size, kernel, stride, padding, 1)
    counts = [0] * size
    for o in range(out):
        for i in range(o * stride - padding, o * stride - padding + kernel):
            if 0 <= i < size:
                counts[i] += 1
    return max(counts)


def max_pool_bound(height: int, width: int, kernel: int = 3, stride: int = 1,
                   padding: int = 1) -> float:
    """Exact ℓ2 Lipschitz constant of ``max_pool2d``: √(max windows covering one pixel)."""
    return math.sqrt(_coverage(height, kernel, stride, padding)
                     * _coverage(width, kernel, stride, padding))


def batchnorm_scale(running_var: torch.Tensor, eps: float,
                    weight: torch.Tensor | None = None) -> torch.Tensor:
    """Lipschitz constant of BN in inference form: max_c |γ_c| / √(var_c + eps) (last dim)."""
    scale = torch.rsqrt(running_var + eps)
    if weight is not None:
        scale = scale * weight.abs()
    return scale.amax(dim=-1)
