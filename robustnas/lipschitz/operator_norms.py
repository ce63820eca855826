"""A certified upper bound on the L2 Lipschitz constant of a model's logits w.r.t. its input.

The bound composes per-layer bounds along the computation graph (a product of per-layer
spectral norms, generalised to the DARTS cell DAG):

* convolution: the exact spectral norm of the *circular* convolution on an
  ``(H + k_eff - 1) × (W + k_eff - 1)`` torus, computed with an FFT of the (dilated) kernel
  and a batched SVD over frequencies. A zero-padded convolution of an ``H × W`` input is a
  crop of that circular one applied to a zero-embedded input, and striding subsamples the
  output; cropping, embedding and subsampling have norm ≤ 1, so this is a valid upper
  bound. (Power iteration on the operator would converge to the true norm *from below*,
  which is not a certified bound; the FFT form is exact for the circular operator.)
  Grouped/depthwise convolutions give block-diagonal frequency matrices.
* linear layer: its spectral norm; eval-mode batch norm: ``max |γ| / sqrt(var + eps)``;
  ``Normalize``: ``1 / min(std)``; ReLU, identity: 1; ``none``: 0.
* pooling: average/adaptive pooling is linear with non-negative weights, bounded by
  ``sqrt(max row sum · max column sum)`` (Schur test); for max pooling,
  ``|max a - max b| ≤ ‖a - b‖₂`` on each window gives ``sqrt(max windows per pixel)``
  (3 for a 3×3 stride-1 pool: overlapping max pools are *not* 1-Lipschitz in L2).
* DARTS cells: with ``L_i`` the bound of state ``i`` w.r.t. the network input, a node
  ``Σ_k op_k(state_{i_k})`` has ``Σ_k L(op_k) L_{i_k}`` (sum over paths), and the cell
  output, a channel concatenation, has ``sqrt(Σ_{i ∈ concat} L_i²)``. A supernet's mixed
  edge ``Σ_o w_o op_o`` has ``Σ_o |w_o| L(op_o)`` (times ``|β|`` when edges are weighted).

The bound is for the eval-mode network (batch norm with running statistics, no drop-path,
no auxiliary head). It is typically very loose for deep networks; it is meant for
comparisons between architectures, as in the Lipschitz-constrained NAS literature.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.errors import UsageError
from robustnas.space.darts.network import Cell, Network
from robustnas.space.darts.ops import FactorizedReduce, Identity, PoolBN, Zero
from robustnas.space.darts.supernet import MixedOp, SearchCell, SuperNet
from robustnas.space.normalize import Normalize

Shapes = dict[int, tuple[int, int]]


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


def _linear_pool_bound(pool: Callable[[torch.Tensor], torch.Tensor],
                       input_hw: tuple[int, int]) -> float:
    """Schur bound ``sqrt(‖A‖₁ ‖A‖_∞)`` of a linear non-negative pooling operator ``A``."""
    ones = torch.ones(1, 1, *input_hw, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        out = pool(ones)
        (col,) = torch.autograd.grad(out.sum(), ones)
    return math.sqrt(float(out.detach().max()) * float(col.max()))


def _max_pool_bound(m: nn.MaxPool2d, input_hw: tuple[int, int]) -> float:
    if m.dilation not in (1, (1, 1)):
        raise UsageError("Lipschitz bound: dilated max pooling is not supported")
    # Count, per input pixel, the windows that contain it: adjoint of window-sum on ones.
    ones = torch.ones(1, 1, *input_hw, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        sums = F.avg_pool2d(ones, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                            count_include_pad=True, divisor_override=1)
        (windows,) = torch.autograd.grad(sums.sum(), ones)
    return math.sqrt(float(windows.max()))


def _bn_bound(m: nn.BatchNorm2d) -> float:
    if m.running_var is None:
        raise UsageError("Lipschitz bound: batch norm without running statistics")
    scale = (m.running_var.double() + m.eps).rsqrt()
    if m.weight is not None:
        scale = scale * m.weight.detach().double().abs()
    return float(scale.max())


class _Bounder:
    """Evaluates per-module bounds using input sizes recorded in one forward pass."""

    def __init__(self, shapes: Shapes) -> None:
        self.shapes = shapes

    def hw(self, m: nn.Module) -> tuple[int, int]:
        try:
            return self.shapes[id(m)]
        except KeyError:
            raise UsageError(f"Lipschitz bound: {type(m).__name__} was not reached in the "
                             "forward pass") from None

    def module(self, m: nn.Module) -> float:  # noqa: C901 - one branch per layer type
        if isinstance(m, nn.Conv2d):
            return conv2d_norm_bound(m.weight, self.hw(m), m.dilation, m.groups)
        if isinstance(m, nn.Linear):
            return float(torch.linalg.matrix_norm(m.weight.detach().double(), ord=2))
        if isinstance(m, nn.BatchNorm2d):
            return _bn_bound(m)
        if isinstance(m, Normalize):
            return float(1.0 / m.std.min())
        if isinstance(m, (nn.ReLU, Identity, nn.Identity, nn.Flatten, nn.Dropout)):
            return 1.0
        if isinstance(m, Zero):
            return 0.0
        if isinstance(m, nn.MaxPool2d):
            return _max_pool_bound(m, self.hw(m))
        if isinstance(m, nn.AvgPool2d):
            return _linear_pool_bound(
                lambda t: F.avg_pool2d(t, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                       m.count_include_pad, m.divisor_override), self.hw(m))
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return _linear_pool_bound(lambda t: F.adaptive_avg_pool2d(t, m.output_size),
                                      self.hw(m))
        if isinstance(m, PoolBN):
            return self.module(m.pool) * (self.module(m.bn) if m.bn is not None else 1.0)
        if isinstance(m, FactorizedReduce):
            branches = math.hypot(self.module(m.conv_1), self.module(m.conv_2))
            return branches * self.module(m.bn)
        if isinstance(m, nn.Sequential):
            return math.prod(self.module(c) for c in m)
        raise UsageError(f"Lipschitz bound: unsupported layer {type(m).__name__}")

    def cell(self, cell: Cell, l0: float, l1: float) -> float:
        states = [self.module(cell.preprocess0) * l0, self.module(cell.preprocess1) * l1]
        for node in range(cell.steps):
            states.append(sum(self.module(cell.ops[k]) * states[cell.indices[k]]
                              for k in (2 * node, 2 * node + 1)))
        return math.sqrt(sum(states[i] ** 2 for i in cell.concat))

    def search_cell(self, cell: SearchCell, l0: float, l1: float, ops: torch.Tensor,
                    edges: torch.Tensor | None) -> float:
        states = [self.module(cell.preprocess0) * l0, self.module(cell.preprocess1) * l1]
        offset = 0
        for _ in range(cell.steps):
            total = 0.0
            for j, lj in enumerate(states):
                mixed: MixedOp = cell.edges[offset + j]
                w = ops[offset + j].abs()
                edge = sum(float(w[o]) * self.module(op) for o, op in enumerate(mixed.ops)
                           if float(w[o]) != 0.0)
                if edges is not None:
                    edge *= float(edges[offset + j].abs())
                total += edge * lj
            offset += len(states)
            states.append(total)
        return math.sqrt(sum(s ** 2 for s in states[-cell.multiplier:]))


def _record_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> Shapes:
    shapes: Shapes = {}

    def hook(module: nn.Module, inputs: tuple) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() == 4:
            shapes.setdefault(id(module), tuple(inputs[0].shape[-2:]))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()  # a train-mode pass would update batch-norm statistics
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return shapes


def lipschitz_upper_bound(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Certified L2 Lipschitz bound of the logits of ``model`` on ``input_shape`` = (C, H, W).

    Supports :class:`Network`, :class:`SuperNet` (at its current mixing weights) and
    ``nn.Sequential`` models of the layers listed in the module docstring.
    """
    model = getattr(model, "module", model)
    b = _Bounder(_record_shapes(model, tuple(input_shape)))
    if isinstance(model, (Network, SuperNet)):
        l_stem = b.module(model.normalize) * b.module(model.stem)
        l0 = l1 = l_stem
        weights = None
        if isinstance(model, SuperNet):
            with torch.no_grad():
                weights = model.mixing_weights()
        for cell in model.cells:
            if isinstance(cell, Cell):
                out = b.cell(cell, l0, l1)
            else:
                w = weights["reduce" if cell.reduction else "normal"]
                out = b.search_cell(cell, l0, l1, w.ops.detach(),
                                    None if w.edges is None else w.edges.detach())
            l0, l1 = l1, out
        return l1 * b.module(model.global_pooling) * b.module(model.classifier)
    if isinstance(model, nn.Sequential):
        return b.module(model)
    if getattr(model, "space", None) == "nb201":  # NAS-Bench-201 network or supernet
        from robustnas.space.nb201.lipschitz import nb201_lipschitz

        return nb201_lipschitz(model, b)
    if hasattr(model, "lipschitz_bound"):  # hand-crafted networks, ensembles
        return float(model.lipschitz_bound(b.module))
    raise UsageError(f"Lipschitz bound: unsupported model {type(model).__name__}")
