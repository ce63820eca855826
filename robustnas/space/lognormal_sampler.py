"""Log-normal architecture sampling (RACL): α and edge weights β drawn by reparameterisation.

For each cell type the operation weights of edge e and the edge weights of node j are

    log α_e = loc(μ_e)   + s_e ⊙ ε_e + U_e η_e              (8 ops; ε_e ~ N(0, I₈), η_e ~ N(0, I_r))
    log β_j = loc(μβ_j) + sβ_j ⊙ ε'_j + Uβ_j η'_j          (the j + 2 incoming edges of node j)

so α_e ~ LN(loc, diag(s²) + U Uᵀ): a diagonal-plus-rank-r covariance factor per edge (and
per node for β), independent across edges (α) and nodes (β), with s = softplus(ρ). This
keeps the cost linear in the number of edges and makes node sums independent of each other
(which the moment matching of :mod:`robustnas.lipschitz.moments` relies on). ``rank=0``
gives a diagonal covariance. Spaces other than DARTS pass their nodes' in-degrees
(``node_sizes``) and may leave out β (``edge_weights=False``).

μ for α is the supernet's own ``alpha_normal``/``alpha_reduce`` (passed in by the supernet),
so the genotype is still derived from μ by the supernet's ``genotype()``. How the samples enter
the mixed op is set by ``location``:

* ``"softmax"`` (default): loc(μ) = log_softmax(μ) per edge (per node for β). The median
  weights are then exactly DARTS' softmax(μ) (and PC-DARTS' softmax over a node's edges for
  β); a sample is that times exp(noise), still exactly log-normal, used *as is* (not
  renormalised). Shifting all μ of an edge by a constant changes nothing, as in DARTS.
* ``"raw"``: loc(μ) = μ, the literal α = exp(μ + Lε) of the paper. The overall scale of α
  is then free; BN after each cell absorbs it, so a Lipschitz penalty can be met by
  shrinking every α alike, which is why this is not the default.

The samples multiply the op outputs and edge outputs directly (RACL's I_j = Σ_i β_ij Σ_o
α_o o(I_i)); they are not renormalised, because a renormalised log-normal is no longer
log-normal and the bound's moment matching would not apply. In eval mode the sampler
returns the median (noise 0), i.e. softmax(μ) in the default mode: deterministic
validation, and the same weights DARTS would use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from robustnas.space.arch_sampler import ArchSampler, CellWeights

KINDS = ("normal", "reduce")


@dataclass
class LogNormalParams:
    """loc and covariance of log α (edges × ops, edges × ops × ops) and of log β (block-diag)."""

    loc_ops: torch.Tensor
    cov_ops: torch.Tensor
    loc_edges: torch.Tensor | None
    cov_edges: torch.Tensor | None


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class LogNormalArchSampler(ArchSampler):
    """Samples CellWeights(ops=α, edges=β) from trainable multivariate log-normals."""

    def __init__(self, num_edges: int, num_ops: int, steps: int, rank: int = 1,
                 init_std: float = 0.1, location: str = "softmax", edge_weights: bool = True,
                 derive_with_beta: bool = True, node_sizes: tuple[int, ...] | None = None) -> None:
        super().__init__()
        if location not in ("softmax", "raw"):
            raise ValueError(f"location must be softmax or raw, got {location!r}")
        self.rank = rank
        self.location = location
        self.edge_weights = edge_weights
        self.derive_with_beta = derive_with_beta
        self.node_ranges: list[tuple[int, int]] = []
        start = 0
        # DARTS: node j has j + 2 inputs; other spaces pass their in-degrees (NB201: 1, 2, 3).
        for size in node_sizes or tuple(node + 2 for node in range(steps)):
            self.node_ranges.append((start, start + size))
            start += size
        if start != num_edges:
            raise ValueError(f"{steps} steps need {start} edges, got {num_edges}")
        self.register_buffer("node_of_edge", torch.tensor(
            [j for j, (a, b) in enumerate(self.node_ranges) for _ in range(a, b)]),
            persistent=False)
        rho = _inverse_softplus(init_std)
        factor_std = 0.1 * init_std / math.sqrt(max(rank, 1))
        for kind in KINDS:
            self.register_parameter(f"{kind}_ops_rho",
                                    nn.Parameter(torch.full((num_edges, num_ops), rho)))
            if rank:
                self.register_parameter(f"{kind}_ops_factor", nn.Parameter(
                    factor_std * torch.randn(num_edges, num_ops, rank)))
            if edge_weights:
                self.register_parameter(f"{kind}_edges_mu",
                                        nn.Parameter(1e-3 * torch.randn(num_edges)))
                self.register_parameter(f"{kind}_edges_rho",
                                        nn.Parameter(torch.full((num_edges,), rho)))
                if rank:
                    self.register_parameter(f"{kind}_edges_factor", nn.Parameter(
                        factor_std * torch.randn(num_edges, rank)))

    # -- the distribution ----------------------------------------------------------------
    def _p(self, kind: str, name: str) -> torch.Tensor | None:
        return getattr(self, f"{kind}_{name}", None)

    def _edge_loc(self, mu: torch.Tensor) -> torch.Tensor:
        if self.location == "raw":
            return mu
        return torch.cat([torch.log_softmax(mu[a:b], dim=0) for a, b in self.node_ranges])

    def _op_loc(self, alpha: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(alpha, dim=-1) if self.location == "softmax" else alpha

    def distribution(self, alpha: torch.Tensor, reduction: bool) -> LogNormalParams:
        """loc and covariance of log α and log β for one cell type (differentiable)."""
        kind = KINDS[int(reduction)]
        s = nn.functional.softplus(self._p(kind, "ops_rho"))
        cov_ops = torch.diag_embed(s ** 2)
        factor = self._p(kind, "ops_factor")
        if factor is not None:
            cov_ops = cov_ops + factor @ factor.transpose(1, 2)
        loc_edges = cov_edges = None
        if self.edge_weights:
            loc_edges = self._edge_loc(self._p(kind, "edges_mu"))
            s_b = nn.functional.softplus(self._p(kind, "edges_rho"))
            same_node = (self.node_of_edge.unsqueeze(0) == self.node_of_edge.unsqueeze(1))
            cov_edges = torch.diag(s_b ** 2)
            factor_b = self._p(kind, "edges_factor")
            if factor_b is not None:
                cov_edges = cov_edges + (factor_b @ factor_b.T) * same_node
        return LogNormalParams(self._op_loc(alpha), cov_ops, loc_edges, cov_edges)

    def log_weights(self, alpha: torch.Tensor, reduction: bool, samples: int | None = None,
                    median: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """log α (…, edges, ops) and log β (…, edges) — ``samples`` draws, or the median."""
        kind = KINDS[int(reduction)]
        shape = () if samples is None else (samples,)
        log_ops = self._op_loc(alpha).expand(*shape, *alpha.shape)
        log_edges = None
        if self.edge_weights:
            mu = self._p(kind, "edges_mu")
            log_edges = self._edge_loc(mu).expand(*shape, *mu.shape)
        if median:
            return log_ops, log_edges
        rho = self._p(kind, "ops_rho")
        noise = nn.functional.softplus(rho) * torch.randn(*shape, *rho.shape,
                                                           device=rho.device, dtype=rho.dtype)
        factor = self._p(kind, "ops_factor")
        if factor is not None:
            eta = torch.randn(*shape, factor.shape[0], self.rank, 1, device=rho.device,
                              dtype=rho.dtype)
            noise = noise + (factor @ eta).squeeze(-1)
        log_ops = log_ops + noise
        if log_edges is not None:
            rho_b = self._p(kind, "edges_rho")
            noise_b = nn.functional.softplus(rho_b) * torch.randn(
                *shape, *rho_b.shape, device=rho_b.device, dtype=rho_b.dtype)
            factor_b = self._p(kind, "edges_factor")
            if factor_b is not None:
                eta = torch.randn(*shape, len(self.node_ranges), self.rank, device=rho_b.device,
                                  dtype=rho_b.dtype)
                noise_b = noise_b + (factor_b * eta[..., self.node_of_edge, :]).sum(-1)
            log_edges = log_edges + noise_b
        return log_ops, log_edges

    # -- the ArchSampler hooks -----------------------------------------------------------
    def forward(self, alpha: torch.Tensor, reduction: bool) -> CellWeights:  # noqa: D102
        log_ops, log_edges = self.log_weights(alpha, reduction, median=not self.training)
        return CellWeights(ops=log_ops.exp(),
                           edges=None if log_edges is None else log_edges.exp())

    def derivation_weights(self, alpha: torch.Tensor, reduction: bool) -> torch.Tensor:
        """Median α of each edge, times the edge's median β when ``derive_with_beta``.

        Op choice per edge is the argmax of μ either way; β only changes which two edges a
        node keeps (as in PC-DARTS' derivation).
        """
        with torch.no_grad():
            log_ops, log_edges = self.log_weights(alpha, reduction, median=True)
            if self.location == "raw":  # rank ops within an edge like DARTS does
                log_ops = torch.log_softmax(log_ops, dim=-1)
            if self.derive_with_beta and log_edges is not None:
                if self.location == "raw":
                    log_edges = self._edge_loc_softmax(log_edges)
                log_ops = log_ops + log_edges.unsqueeze(-1)
            return log_ops.exp()

    def _edge_loc_softmax(self, log_edges: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.log_softmax(log_edges[a:b], dim=0) for a, b in self.node_ranges])
