"""A certified upper bound on the L2 Lipschitz constant of a model's logits w.r.t. its input.

The bound composes per-layer bounds along the computation graph (a product of per-layer
spectral norms, generalised to cell DAGs). The per-layer bounds are in
:mod:`robustnas.lipschitz` (:class:`~robustnas.lipschitz.LayerBounder`: FFT spectral norms
of convolutions, pooling, batch norm, linear layers); a model composes them itself through
its ``lipschitz_bound(bound)`` method (DARTS and NAS-Bench-201 networks and supernets:
``robustnas/space/<name>/lipschitz.py``; hand-crafted networks; ensembles), and an
``nn.Sequential`` of supported layers is their product. A model of a space without a
Lipschitz bound is refused in one line naming the space.

The bound is for the eval-mode network (batch norm with running statistics, no drop-path,
no auxiliary head). It is typically very loose for deep networks; it is meant for
comparisons between architectures, as in the Lipschitz-constrained NAS literature.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from robustnas.errors import UsageError
from robustnas.lipschitz import LayerBounder, record_shapes
from robustnas.lipschitz.operator_norms import conv2d_norm_bound
from robustnas.space.protocol import LIPSCHITZ_BOUND, has, refusal
from robustnas.space.spaces import space_of_model

__all__ = ["conv2d_norm_bound", "lipschitz_upper_bound"]  # conv2d_norm_bound: for users

Bound = Callable[[nn.Module], float]


def lipschitz_upper_bound(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Certified L2 Lipschitz bound of the logits of ``model`` on ``input_shape`` = (C, H, W).

    Supports models with a ``lipschitz_bound(bound)`` method (a supernet at its current
    mixing weights), models of a space with the Lipschitz-bound capability, and
    ``nn.Sequential`` models of the layers :class:`~robustnas.lipschitz.LayerBounder` knows.
    """
    model = getattr(model, "module", model)
    compose = _composition(model)  # refuses before the forward pass
    bounder = LayerBounder(record_shapes(model, tuple(input_shape)))
    return float(compose(bounder.module))


def _composition(model: nn.Module) -> Callable[[Bound], float]:
    """How ``model``'s bound is composed from per-layer bounds; UsageError in one line when
    it has none."""
    if isinstance(model, nn.Sequential) or hasattr(model, "lipschitz_bound"):
        # LayerBounder.module multiplies a sequence out and asks a model for its own bound.
        return lambda bound: bound(model)
    space = space_of_model(model)
    if space is None:
        raise UsageError(f"Lipschitz bound: unsupported model {type(model).__name__}")
    if not has(space, LIPSCHITZ_BOUND):
        raise refusal(space, LIPSCHITZ_BOUND, "lipschitz bound")
    return lambda bound: space.lipschitz_bound(model, bound)
