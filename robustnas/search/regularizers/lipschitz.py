"""Log-normal Lipschitz constraint on the architecture (RACL: Dong et al.,
"Adversarially Robust Neural Architectures", 2020).

``setup`` asks the supernet's space for its Lipschitz composition
(:meth:`~robustnas.space.protocol.SearchSpace.lipschitz_adapter`; DARTS:
:mod:`robustnas.space.darts.lipschitz_reg`, NAS-Bench-201:
:mod:`robustnas.space.nb201.lipschitz_reg`; a space without one refuses in one line) and
installs the adapter's :class:`~robustnas.space.lognormal_sampler.LogNormalArchSampler` on
the supernet: from then on every training forward pass (α step and w step) samples α (and,
for DARTS, the edge weights β) by reparameterisation, and eval passes use the median. The
term added to the α loss bounds the network's Lipschitz constant in probability:

1. λ_o of every candidate op of every cell (the adapter's ``constants``): analytic or power
   iteration with persistent vectors (``power_iters`` per step);
2. λ_F ≈ LN(μ_F, σ_F²) by Fenton–Wilkinson through node sums and cell products
   (the adapter's ``log_moments``, :mod:`robustnas.lipschitz.moments`), differentiable in
   μ_α, μ_β and the covariance factors;
3. the chance constraint Pr(λ_F ≤ λ̄_F) ≥ η ⇔ μ_F + Φ⁻¹(η)·σ_F ≤ ln λ̄_F.

**λ̄ is per node.** The bound is a product over N = cells × nodes factors, so its log
grows linearly with depth and any absolute threshold would mean something different for
every supernet size. ``lambda_bar`` is therefore the allowed geometric-mean factor per node:
λ̄_F = lambda_bar^N, and the constraint violation is measured per node,

    g = (μ_F + Φ⁻¹(η)·σ_F) / N − ln(lambda_bar).

The default penalty is ``weight · relu(g)²`` (zero while the constraint holds, smooth at
the boundary). ``method: augmented_lagrangian`` adds a multiplier ν updated after every α
step, ν ← max(0, ν + 2·weight·g), with term ``weight·(relu(g + ν/(2·weight))² −
(ν/(2·weight))²)`` (method of multipliers for one inequality; equal to the penalty while
ν = 0). RACL mentions ADMM; with a single scalar constraint the method of multipliers is
what it reduces to; a full ADMM splitting is not implemented.

Defaults and why: η = 0.9 (best in the paper's ablation). ``lambda_bar`` = 1: on average
every node non-expansive, which is well below the initial per-node bound of a DARTS
supernet (several units) so the term is active from the start. ``weight`` = 1: with the
per-node scaling g is O(1), so the term is comparable to the cross-entropy. ``rank`` 1
(diagonal plus rank-1 covariance per edge), ``init_std`` 0.1. λ̄, the weight and the
paper's extra gradient-norm term are not published in accessible form (Dong et al. 2020); the
last is not implemented.

The constants λ_o are computed without autograd: the α step only trains the architecture
distribution, and letting the w step shrink weights to satisfy the bound is not part of
RACL's search. Preprocessing, stem and classifier (the constant C) are left out.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import torch
from torch import nn

from robustnas.errors import UsageError
from robustnas.search.regularizers._options import Option, parse_options
from robustnas.search.regularizers.base import REGULARIZERS, Regularizer, StepContext
from robustnas.space.lognormal_sampler import LogNormalArchSampler
from robustnas.space.spaces import space_of_model

OPTIONS = {
    "lambda_bar": Option(float, 1.0, "positive", lambda v: v > 0),
    "eta": Option(float, 0.9, "in (0, 1)", lambda v: 0 < v < 1),
    "weight": Option(float, 1.0, "non-negative", lambda v: v >= 0),
    "method": Option(str, "penalty", choices=("penalty", "augmented_lagrangian")),
    "rank": Option(int, 1, "0 or more", lambda v: v >= 0),
    "init_std": Option(float, 0.1, "positive", lambda v: v > 0),
    "location": Option(str, "softmax", choices=("softmax", "raw")),
    "edge_weights": Option(bool, True),
    "derive_with_beta": Option(bool, True),
    "power_iters": Option(int, 1, "at least 1", lambda v: v >= 1),
    "init_power_iters": Option(int, 30, "at least 1", lambda v: v >= 1),
    "pool_bound": Option(str, "l2", choices=("l2", "paper")),
    "start_epoch": Option(int, 0, "0 or more", lambda v: v >= 0),
    "seed": Option(int, 0, "0 or more", lambda v: v >= 0),
}


@REGULARIZERS.register("lipschitz")
class LogNormalLipschitz(Regularizer):
    """Chance constraint on the log-normal Lipschitz bound of the sampled supernet."""

    phases = frozenset({"arch"})
    reuses_step_graph = False  # the bound depends on α and the weights only

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = parse_options("lipschitz", OPTIONS, options)
        self.z = NormalDist().inv_cdf(self.options["eta"])
        self.multiplier = 0.0
        self.model: nn.Module | None = None
        self.sampler: LogNormalArchSampler | None = None
        self.adapter: Any = None
        # Vectors of a checkpoint loaded before setup (handed to the adapter then).
        self._pending: dict[str, torch.Tensor] = {}

    def setup(self, model: nn.Module) -> None:
        """Install the space's log-normal sampler (its parameters join the architecture
        parameters); a model of no space, or of a space without a Lipschitz composition,
        is refused in one line."""
        space = space_of_model(model)
        if space is None:
            raise UsageError("regularizer lipschitz needs a supernet of a search space, got "
                             f"{type(model).__name__}")
        self.adapter = space.lipschitz_adapter(model, self.options)
        if self._pending:
            self.adapter.load_state_dict(self._pending)
            self._pending = {}
        self.sampler = self.adapter.sampler
        model.set_arch_sampler(self.sampler)
        self.model = model

    def active(self, epoch: int) -> bool:  # noqa: D102
        return epoch >= self.options["start_epoch"]

    @property
    def num_nodes(self) -> int:
        """N: the number of node sums in the bound (cells × nodes)."""
        return self.adapter.num_nodes

    def lipschitz_constants(self, input_shape: tuple[int, ...]) -> torch.Tensor:
        """Refresh and return λ (cells × edges × ops) for inputs of ``input_shape``."""
        if self.adapter is None:
            raise RuntimeError("setup(model) must be called first")
        return self.adapter.constants(tuple(input_shape))

    def log_bound(self, lambdas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ_F, σ_F) of log λ_F for the current distribution and constants."""
        mu, var = self.adapter.log_moments(lambdas)
        return mu, var.clamp_min(1e-18).sqrt()

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        """The penalty on μ_F + Φ⁻¹(η)σ_F exceeding ln λ̄_F, and the values to log."""
        o = self.options
        lambdas = self.lipschitz_constants(tuple(ctx.x.shape[1:]))
        mu, sigma = self.log_bound(lambdas)
        n = self.num_nodes
        quantile = mu + self.z * sigma
        excess = quantile / n - math.log(o["lambda_bar"])
        weight = o["weight"]
        if o["method"] == "penalty" or weight == 0:
            term = weight * torch.relu(excess) ** 2
        else:
            shift = self.multiplier / (2 * weight)
            term = weight * (torch.relu(excess + shift) ** 2 - shift ** 2)
            self.multiplier = max(0.0, self.multiplier + 2 * weight * float(excess.detach()))
        mu_v, sigma_v = float(mu.detach()), float(sigma.detach())
        log_limit = n * math.log(o["lambda_bar"])
        prob = NormalDist().cdf((log_limit - mu_v) / max(sigma_v, 1e-12))
        logs = {"mu_F": mu_v, "sigma_F": sigma_v, "excess": float(excess.detach()),
                "log_bound_per_node": mu_v / n, "prob_within": prob,
                "multiplier": self.multiplier}
        for k, name in enumerate(self.model.primitives):
            if name != "none":
                logs[f"lambda/{name}"] = float(lambdas[:, :, k].mean())
        return term.to(ctx.loss.dtype), logs

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        vectors = self.adapter.state_dict() if self.adapter is not None else self._pending
        return {"multiplier": self.multiplier, "vectors": dict(vectors)}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        self.multiplier = float(state.get("multiplier", 0.0))
        vectors = dict(state.get("vectors", {}))
        if self.adapter is not None:
            self.adapter.load_state_dict(vectors)
        else:
            self._pending = vectors
