"""Certified upper bounds on the L2 operator norm (Lipschitz constant) of single layers.

* convolution: the exact spectral norm of the *circular* convolution on an
  ``(H + k_eff - 1) × (W + k_eff - 1)`` torus, computed with an FFT of the (dilated) kernel
  and a batched SVD over frequencies. A zero-padded convolution of an ``H × W`` input is a
  crop of that circular one applied to a zero-embedded input, and striding subsamples the
  output; cropping, embedding and subsampling have norm ≤ 1, so this is a valid upper
  bound. (Power iteration on the operator would converge to the true norm *from below*,
  which is not a certified bound; the FFT form is exact for the circular operator.)
  Grouped/depthwise convolutions give block-diagonal frequency matrices.
* linear layer: its spectral norm; eval-mode batch norm: ``max |γ| / sqrt(var + eps)``.
* pooling: average/adaptive pooling is linear with non-negative weights, bounded by
  ``sqrt(max row sum · max column sum)`` (Schur test); for max pooling,
  ``|max a - max b| ≤ ‖a - b‖₂`` on each window gives ``sqrt(max windows per pixel)``
  (3 for a 3×3 stride-1 pool: overlapping max pools are *not* 1-Lipschitz in L2).

All arithmetic is in float64. :class:`~robustnas.lipschitz.bounder.LayerBounder` picks the
bound of a layer by its type.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.errors import UsageError


def conv2d_norm_bound(weight: torch.Tensor, input_hw: tuple[int, int],
                      dilation: tuple[int, int] = (1, 1), groups: int = 1) -> float:
    """Upper bound on the spectral norm of a zero-padded 2-D convolution (any stride/padding).

    Exact spectral norm of the circular convolution on a torus large enough to hold the
    full (unpadded) linear convolution; see the module docstring.
    """
    w = weight.detach().double()
    co, ci_g, kh, kw = w.shape
    if kh == 1 and kw == 1:
        blocks = w[:, :, 0, 0].reshape(groups, co // groups, ci_g)
        return float(torch.linalg.matrix_norm(blocks, ord=2).max())
    dh, dw = dilation
    keh, kew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    dilated = w.new_zeros(co, ci_g, keh, kew)
    dilated[:, :, ::dh, ::dw] = w
    nh, nw = input_hw[0] + keh - 1, input_hw[1] + kew - 1
    spec = torch.fft.fft2(dilated, s=(nh, nw))
    spec = spec.reshape(groups, co // groups, ci_g, nh, nw).permute(3, 4, 0, 1, 2)
    return float(torch.linalg.matrix_norm(spec, ord=2).max())


def linear_bound(m: nn.Linear) -> float:
    """The spectral norm of a linear layer's weight."""
    return float(torch.linalg.matrix_norm(m.weight.detach().double(), ord=2))


def linear_pool_bound(pool: Callable[[torch.Tensor], torch.Tensor],
                      input_hw: tuple[int, int]) -> float:
    """Schur bound ``sqrt(‖A‖₁ ‖A‖_∞)`` of a linear non-negative pooling operator ``A``."""
    ones = torch.ones(1, 1, *input_hw, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        out = pool(ones)
        (col,) = torch.autograd.grad(out.sum(), ones)
    return math.sqrt(float(out.detach().max()) * float(col.max()))


def avg_pool_bound(m: nn.AvgPool2d, input_hw: tuple[int, int]) -> float:
    """Schur bound of an average pooling layer on an ``input_hw`` map."""
    return linear_pool_bound(
        lambda t: F.avg_pool2d(t, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                               m.count_include_pad, m.divisor_override), input_hw)


def adaptive_avg_pool_bound(m: nn.AdaptiveAvgPool2d, input_hw: tuple[int, int]) -> float:
    """Schur bound of an adaptive average pooling layer on an ``input_hw`` map."""
    return linear_pool_bound(lambda t: F.adaptive_avg_pool2d(t, m.output_size), input_hw)


def max_pool_window_bound(m: nn.MaxPool2d, input_hw: tuple[int, int]) -> float:
    """``sqrt(max windows containing one pixel)`` of a max pooling layer."""
    if m.dilation not in (1, (1, 1)):
        raise UsageError("Lipschitz bound: dilated max pooling is not supported")
    # Count, per input pixel, the windows that contain it: adjoint of window-sum on ones.
    ones = torch.ones(1, 1, *input_hw, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        sums = F.avg_pool2d(ones, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                            count_include_pad=True, divisor_override=1)
        (windows,) = torch.autograd.grad(sums.sum(), ones)
    return math.sqrt(float(windows.max()))


def batchnorm_bound(m: nn.BatchNorm2d) -> float:
    """``max |γ| / sqrt(running_var + eps)`` of an eval-mode batch norm."""
    if m.running_var is None:
        raise UsageError("Lipschitz bound: batch norm without running statistics")
    scale = (m.running_var.double() + m.eps).rsqrt()
    if m.weight is not None:
        scale = scale * m.weight.detach().double().abs()
    return float(scale.max())
