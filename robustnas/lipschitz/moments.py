"""Moment matching (Fenton–Wilkinson) of the log-normal Lipschitz bound of a supernet.

The bound (REFERENCE.md §3, the RACL paper's form) is

    λ_F ≲ C · Π_cells Π_nodes S_{c,j},   S_{c,j} = Σ_{i→j} β_i Σ_o α_{i,o} λ_{c,i,o},

where C (stem, preprocessing, classifier) does not depend on the architecture and is left
out. Within one node every term β_i·α_{i,o}·λ is log-normal: its log is the Gaussian
b_i + a_{i,o} plus the constant log λ. A sum of correlated log-normals S_c = Σ_t λ_{c,t}
exp(ℓ_t), ℓ ~ N(m, K), is replaced by the log-normal with the same first two moments
(Fenton–Wilkinson, generalised to correlated terms and to several sums at once):

    E[S_c]          = Σ_t w_{c,t},               w_{c,t} = λ_{c,t} exp(m_t + K_tt/2)
    Cov(S_c, S_c')  = Σ_{t,t'} w_{c,t} w_{c',t'} (exp(K_{tt'}) − 1)
    Cov(log S_c, log S_c') = log(1 + Cov(S_c, S_c') / (E[S_c] E[S_c']))
    E[log S_c]      = log E[S_c] − Var(log S_c)/2

(with independent terms this is the textbook m = Σ exp(μ_i + σ_i²/2),
σ_S² = ln(1 + v/m²), μ_S = ln m − σ_S²/2). The same α and β are shared by all cells of a
type, so the sums of one node in different cells are strongly correlated: their joint
log-moments are matched together (the ``c, c'`` above), not treated as independent.
Different nodes use disjoint edges, whose α and β are independent in our sampler, so
their logs are uncorrelated. Then log λ_F = Σ log S is a sum of (approximately) jointly
Gaussian variables: μ_F = Σ E[log S], σ_F² = Σ of all covariances. All arithmetic is in
float64 and differentiable in the distribution parameters.
"""

from __future__ import annotations

import torch

from robustnas.search.lipschitz.sampler import LogNormalArchSampler


def fenton_wilkinson(mu: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ_S, σ_S) of Σ_i exp(N(μ_i, σ_i²)) for independent terms (textbook form)."""
    m = torch.exp(mu + sigma ** 2 / 2).sum()
    v = (torch.exp(2 * mu + sigma ** 2) * torch.expm1(sigma ** 2)).sum()
    var = torch.log1p(v / m ** 2)
    return torch.log(m) - var / 2, var.sqrt()


def lognormal_sums(coef: torch.Tensor, loc: torch.Tensor,
                   cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint log-normal match of S_c = Σ_t coef[c, t]·exp(ℓ_t), ℓ ~ N(loc, cov).

    ``coef`` (n, T) non-negative with a positive entry per row, ``loc`` (T,), ``cov`` (T, T).
    Returns E[log S] (n,) and Cov(log S) (n, n) of the matched log-normals.
    """
    w = coef * torch.exp(loc + torch.diagonal(cov) / 2)
    mean = w.sum(dim=1)
    cross = w @ torch.expm1(cov) @ w.T
    log_cov = torch.log1p(cross / (mean.unsqueeze(1) * mean.unsqueeze(0)))
    return torch.log(mean) - torch.diagonal(log_cov) / 2, log_cov


def network_log_moments(sampler: LogNormalArchSampler, alphas: dict[str, torch.Tensor],
                        lambdas: torch.Tensor,
                        reduction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ_F, σ_F²) of log Π_cells Π_nodes S for the sampler's current distribution.

    ``alphas`` maps ``"normal"``/``"reduce"`` to the α (μ) tensors, ``lambdas`` is
    (cells × edges × ops) from :class:`~robustnas.search.lipschitz.constants.SupernetLipschitz`
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
