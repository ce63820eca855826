"""The log-normal Lipschitz regulariser on an NB201 supernet (adapter used by
:class:`robustnas.search.regularizers.lipschitz.LogNormalLipschitz`).

* Sampling: one :class:`~robustnas.space.lognormal_sampler.LogNormalArchSampler` for the
  single α (6 edges × 5 ops; nodes of in-degree 1, 2, 3), without edge weights β (NB201
  cells sum their edges unweighted).
* Operation bounds λ_{c,e,o} per search cell: ``none`` 0, ``skip_connect`` 1,
  ``avg_pool_3x3`` the exact norm of the pooling operator (Schur bound), ``nor_conv`` the
  spectral norm of its convolution (exact circular-convolution bound,
  :func:`robustnas.lipschitz.operator_norms.conv2d_norm_bound`). **Deviation:** the search
  cells' batch norm uses batch statistics (``track_running_stats=False``, as NAS-Bench-201
  searches), so it has no data-independent bound; it is counted as 1 here, which makes λ
  a bound of the cell *before* per-batch normalisation rather than a certified one.
* Moments: :func:`robustnas.space.nb201.lipschitz_moments.nb201_log_moments` (exact path
  expansion, joint Fenton–Wilkinson over the cells that share α).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustnas.lipschitz.operator_norms import conv2d_norm_bound
from robustnas.lipschitz.shapes import layer_input_shapes
from robustnas.lipschitz.spectral import avg_pool_norm
from robustnas.space.lognormal_sampler import LogNormalArchSampler
from robustnas.space.nb201.lipschitz_moments import nb201_log_moments
from robustnas.space.nb201.ops import Identity, Zero


class NB201LipschitzAdapter:
    """What the Lipschitz regulariser needs from an NB201 supernet."""

    def __init__(self, model: nn.Module, options: dict[str, Any]) -> None:
        self.model = model
        self.sampler = LogNormalArchSampler(
            6, len(model.primitives), 0, rank=options["rank"], init_std=options["init_std"],
            location=options["location"], edge_weights=False, derive_with_beta=False,
            node_sizes=(1, 2, 3))
        self.cells = [c for c in model.cells if hasattr(c, "edges")]
        self.num_nodes = 3 * len(self.cells)
        self._shapes: dict[nn.Module, tuple[int, int]] | None = None

    def _probe(self, input_shape: tuple[int, ...]) -> dict[nn.Module, tuple[int, int]]:
        layers = [m for cell in self.cells for m in cell.modules()
                  if isinstance(m, (nn.Conv2d, nn.AvgPool2d))]
        shapes = layer_input_shapes(self.model, layers, input_shape)
        return {m: (shape[-2], shape[-1]) for m, shape in shapes.items()}

    def _op(self, op: nn.Module) -> float:
        assert self._shapes is not None
        if isinstance(op, Zero):
            return 0.0
        if isinstance(op, Identity):
            return 1.0
        if isinstance(op, nn.AvgPool2d):
            h, w = self._shapes[op]
            return float(avg_pool_norm(h, w, 3, 1, 1, bool(op.count_include_pad)))
        conv = next(m for m in op.modules() if isinstance(m, nn.Conv2d))
        return conv2d_norm_bound(conv.weight, self._shapes[conv], conv.dilation, conv.groups)

    def constants(self, input_shape: tuple[int, ...]) -> torch.Tensor:
        """λ (cells × 6 × ops) at the current weights."""
        if self._shapes is None:
            self._shapes = self._probe(input_shape)
        values = [[[self._op(op) for op in mixed.ops] for mixed in cell.edges]
                  for cell in self.cells]
        return torch.tensor(values, dtype=torch.float64)

    def log_moments(self, lambdas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ_F, σ_F²) of log λ_F for the sampler's current distribution."""
        params = self.sampler.distribution(self.model.alpha, False)
        cov = torch.block_diag(*params.cov_ops)
        return nb201_log_moments(params.loc_ops, cov, lambdas.to(params.loc_ops.device),
                                 none_index=self.model.primitives.index("none")
                                 if "none" in self.model.primitives else None)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Nothing: the operation bounds are exact, with no power-iteration vectors."""
        return {}

    def load_state_dict(self, vectors: dict[str, torch.Tensor]) -> None:
        """Nothing to restore (checkpoints of NB201 searches hold no vectors)."""
