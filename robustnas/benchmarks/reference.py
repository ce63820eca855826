"""The retraining network as it ran before issue 11, for the benchmarks' ``reference`` rows.

Issue 11 changed two things on the path of the retraining and attack steps
(:class:`robustnas.space.network.Network`); everything else there is unchanged:

* drop-path (training only, ``drop_path_prob > 0``): today one full-size multiply by the
  rescaled (N, 1, 1, 1) mask; before, ``x / keep * mask`` (two full-size operations).
  :func:`reference_drop_path` swaps the old form in for a block of code.
* :class:`~robustnas.space.ops.FactorizedReduce`'s two 1×1 stride-2 convolutions became a
  ``Conv2d`` subclass that first checks whether the layer is tiny (below 8 input channels it
  runs in the contiguous layout, working around a heap corruption of torch's channels_last
  backward). :func:`use_plain_strided_convs` puts plain ``nn.Conv2d`` layers back (sharing
  the same weight) wherever the check does not apply (8 or more input channels, where today's
  layer computes exactly ``Conv2d.forward``); the tiny ones keep the work-around, since the
  original would corrupt the heap in channels_last.

The search supernet has its own reference (:meth:`SuperNet.use_reference_path`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from robustnas.space.darts import network as network_module
from robustnas.space.darts.ops import _StridedPointwise


def drop_path_before_issue_11(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """The retraining drop-path of before issue 11: the same mask as today's
    :func:`robustnas.space.network.drop_path`, applied as ``x / keep * mask``."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


@contextlib.contextmanager
def reference_drop_path() -> Iterator[None]:
    """Within the block the retraining network's cells use :func:`drop_path_before_issue_11`
    (the module-level ``drop_path`` they call is swapped, and restored afterwards)."""
    current = network_module.drop_path
    network_module.drop_path = drop_path_before_issue_11
    try:
        yield
    finally:
        network_module.drop_path = current


def use_plain_strided_convs(model: nn.Module) -> int:
    """Replace FactorizedReduce's guarded 1×1 stride-2 convolutions of 8 or more input
    channels by plain ``nn.Conv2d`` layers holding the same weight; returns how many."""
    replaced = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, _StridedPointwise) and child.in_channels >= 8:
                plain = nn.Conv2d(child.in_channels, child.out_channels, 1, stride=2,
                                  bias=False, device=child.weight.device,
                                  dtype=child.weight.dtype)
                plain.weight = child.weight
                plain.train(child.training)
                setattr(module, name, plain)
                replaced += 1
    return replaced
