"""The log-normal Lipschitz regulariser on a DARTS supernet (adapter used by
:class:`robustnas.search.regularizers.lipschitz.LogNormalLipschitz`).

* Sampling: one :class:`~robustnas.space.lognormal_sampler.LogNormalArchSampler` for both
  cell types' α (and edge weights β unless ``edge_weights`` is off); node ``j`` has
  ``j + 2`` inputs.
* Operation bounds λ_{c,e,o}: :class:`~robustnas.space.darts.lipschitz_constants.
  SupernetLipschitz` (analytic or power iteration with persistent vectors, ``power_iters``
  per step), built at the first step, when the input size is known.
* Moments: :func:`robustnas.space.darts.lipschitz_moments.network_log_moments`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustnas.space.darts.lipschitz_constants import SupernetLipschitz
from robustnas.space.darts.lipschitz_moments import network_log_moments
from robustnas.space.lognormal_sampler import LogNormalArchSampler


class DartsLipschitzAdapter:
    """What the Lipschitz regulariser needs from a DARTS supernet."""

    def __init__(self, model: nn.Module, options: dict[str, Any]) -> None:
        self.model = model
        self.options = options
        edges, ops = model.alpha_normal.shape
        self.sampler = LogNormalArchSampler(
            edges, ops, model.steps, rank=options["rank"], init_std=options["init_std"],
            location=options["location"], edge_weights=options["edge_weights"],
            derive_with_beta=options["derive_with_beta"])
        self.num_nodes = len(model.cells) * len(self.sampler.node_ranges)
        self.estimator: SupernetLipschitz | None = None
        # Vectors of a checkpoint loaded before the first step (the estimator needs the
        # input size, so it is built then).
        self._pending: dict[str, torch.Tensor] = {}

    def constants(self, input_shape: tuple[int, ...]) -> torch.Tensor:
        """Refresh and return λ (cells × edges × ops) for inputs of ``input_shape``."""
        if self.estimator is None:
            self.estimator = SupernetLipschitz(self.model, tuple(input_shape),
                                               pool_bound=self.options["pool_bound"],
                                               seed=self.options["seed"])
            if self._pending:
                self.estimator.load_state_dict(self._pending)
                self._pending = {}
        return self.estimator.update(self.options["power_iters"],
                                     self.options["init_power_iters"])

    def log_moments(self, lambdas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ_F, σ_F²) of log λ_F for the sampler's current distribution."""
        if self.estimator is None:
            raise RuntimeError("constants(input_shape) must be called first")
        alphas = {"normal": self.model.alpha_normal, "reduce": self.model.alpha_reduce}
        return network_log_moments(self.sampler, alphas, lambdas,
                                   self.estimator.reduction.to(lambdas.device))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The persistent power-iteration vectors, by group."""
        return self.estimator.state_dict() if self.estimator is not None else self._pending

    def load_state_dict(self, vectors: dict[str, torch.Tensor]) -> None:
        """Restore power-iteration vectors (applied when the estimator is built)."""
        if self.estimator is not None:
            self.estimator.load_state_dict(vectors)
        else:
            self._pending = dict(vectors)
