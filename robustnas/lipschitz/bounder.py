"""Per-layer Lipschitz bounds at the input sizes one forward pass recorded.

:meth:`LayerBounder.module` knows PyTorch's own layers (convolution, linear, batch norm,
pooling, ReLU and other 1-Lipschitz layers, ``nn.Sequential`` as the product of its
children). A module of another type that defines ``lipschitz_bound(bound)`` is asked for its
own bound, ``bound`` being :meth:`LayerBounder.module` (so a composite op bounds its parts
with it); this is how a space's operations, input normalisation, networks and ensembles are
bounded without this package naming any of them.
"""

from __future__ import annotations

import math

from torch import nn

from robustnas.errors import UsageError
from robustnas.lipschitz.operator_norms import (
    adaptive_avg_pool_bound,
    avg_pool_bound,
    batchnorm_bound,
    conv2d_norm_bound,
    linear_bound,
    max_pool_window_bound,
)
from robustnas.lipschitz.shapes import Shapes

#: Layers that are 1-Lipschitz in L2 (eval mode: dropout is the identity).
ONE_LIPSCHITZ = (nn.ReLU, nn.Identity, nn.Flatten, nn.Dropout)


class LayerBounder:
    """Bounds of single modules, using input sizes recorded by
    :func:`~robustnas.lipschitz.shapes.record_shapes`."""

    def __init__(self, shapes: Shapes) -> None:
        self.shapes = shapes

    def hw(self, m: nn.Module) -> tuple[int, int]:
        """The (H, W) input size ``m`` saw; UsageError when it was not reached."""
        try:
            return self.shapes[id(m)]
        except KeyError:
            raise UsageError(f"Lipschitz bound: {type(m).__name__} was not reached in the "
                             "forward pass") from None

    def module(self, m: nn.Module) -> float:  # noqa: C901 - one branch per layer type
        """An upper bound of the L2 Lipschitz constant of ``m`` (eval mode)."""
        own = getattr(m, "lipschitz_bound", None)
        if callable(own):
            return own(self.module)
        if isinstance(m, nn.Conv2d):
            return conv2d_norm_bound(m.weight, self.hw(m), m.dilation, m.groups)
        if isinstance(m, nn.Linear):
            return linear_bound(m)
        if isinstance(m, nn.BatchNorm2d):
            return batchnorm_bound(m)
        if isinstance(m, ONE_LIPSCHITZ):
            return 1.0
        if isinstance(m, nn.MaxPool2d):
            return max_pool_window_bound(m, self.hw(m))
        if isinstance(m, nn.AvgPool2d):
            return avg_pool_bound(m, self.hw(m))
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return adaptive_avg_pool_bound(m, self.hw(m))
        if isinstance(m, nn.Sequential):
            return math.prod(self.module(c) for c in m)
        raise UsageError(f"Lipschitz bound: unsupported layer {type(m).__name__}")
