"""Log-normal moments of the Lipschitz bound of a DARTS supernet (for the log-normal
Lipschitz regulariser; RACL: Dong et al., "Adversarially Robust Neural Architectures",
2020, method section).

The bound is ``λ_F ≲ C · Π_cells Π_nodes S_{c,j}`` with node sums
``S_{c,j} = Σ_{i→j} β_i Σ_o α_{i,o} λ_{c,i,o}``. Each node's sums over the cells of one type
(which share α and β) are moment-matched jointly to correlated log-normals
(:func:`robustnas.lipschitz.moments.lognormal_sums`); different nodes use disjoint edges,
independent in the sampler, so their logs add up without cross terms.
"""

from __future__ import annotations

import torch

from robustnas.lipschitz.moments import lognormal_sums
from robustnas.space.lognormal_sampler import LogNormalArchSampler


def network_log_moments(sampler: LogNormalArchSampler, alphas: dict[str, torch.Tensor],
                        lambdas: torch.Tensor,
                        reduction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ_F, σ_F²) of log Π_cells Π_nodes S for the sampler's current distribution.

    ``alphas`` maps ``"normal"``/``"reduce"`` to the α (μ) tensors, ``lambdas`` is
    (cells × edges × ops) from
    :class:`~robustnas.space.darts.lipschitz_constants.SupernetLipschitz`
    and ``reduction`` (cells,) flags the reduction cells.
    """
    mu_total = torch.zeros((), dtype=torch.float64, device=lambdas.device)
    var_total = torch.zeros((), dtype=torch.float64, device=lambdas.device)
    lam = lambdas.double()
    for kind, is_red in (("normal", False), ("reduce", True)):
        cells = (reduction == is_red).nonzero().flatten().tolist()
        if not cells:
            continue
        params = sampler.distribution(alphas[kind], is_red)
        for start, end in sampler.node_ranges:
            n_in, n_ops = end - start, params.loc_ops.shape[1]
            loc = params.loc_ops[start:end]
            cov = torch.block_diag(*params.cov_ops[start:end])
            if params.loc_edges is not None:
                loc = loc + params.loc_edges[start:end].unsqueeze(1)
                edge_cov = params.cov_edges[start:end, start:end]
                cov = cov + torch.kron(edge_cov, cov.new_ones(n_ops, n_ops))
            coef = lam[cells, start:end].reshape(len(cells), n_in * n_ops)
            mu, log_cov = lognormal_sums(coef, loc.reshape(-1).double(), cov.double())
            mu_total = mu_total + mu.sum()
            var_total = var_total + log_cov.sum()
    return mu_total, var_total
