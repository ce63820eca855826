"""Moment matching (Fenton–Wilkinson) of sums of correlated log-normals.

This is the maths of the log-normal Lipschitz bound of a supernet; each space composes it
over its own cells (DARTS: :mod:`robustnas.space.darts.lipschitz_moments`, NAS-Bench-201:
:mod:`robustnas.space.nb201.lipschitz_moments`). For DARTS the bound (RACL: Dong et al.,
"Adversarially Robust Neural Architectures", 2020, method section, the paper's form) is

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
