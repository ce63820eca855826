"""Log-normal moments of the Lipschitz bound of an NB201 supernet (for the log-normal
Lipschitz regulariser; RACL: Dong et al., "Adversarially Robust Neural Architectures",
2020, method section, re-derived for cells that sum all edges, no β).

With mixing weights ``w_{e,o} = exp(a_{e,o})``, ``a ~ N(m, K)`` (30 entries: 6 edges × 5
ops), and per-cell operation bounds ``λ_{c,e,o}``, an edge is bounded by
``E_{c,e} = Σ_o w_{e,o} λ_{c,e,o}`` and the cell's DAG by

    L1 = E01,  L2 = E02 + E12·L1,  L3 = E03 + E13·L1 + E23·L2
       = E03 + E01·E13 + E02·E23 + E01·E12·E23              (the four paths 0→3)

Expanding the products, ``L3_c = Σ_t coef_{c,t} · exp(ℓ_t)`` is a sum of log-normal terms,
one per path and choice of an operation on each of its edges (``ℓ_t`` = sum of the chosen
``a``'s, so ``ℓ = A a ~ N(A m, A K Aᵀ)``, ``coef_{c,t}`` = product of the chosen λ's;
``none`` has λ = 0 and drops out). This is exact; only the final step approximates: the
sums of all cells are moment-matched *jointly* to correlated log-normals (Fenton–Wilkinson
with correlated terms, :func:`robustnas.lipschitz.moments.lognormal_sums`). Since all
cells share one α sample, their logs are strongly correlated and the network's
``log λ_F = Σ_c log L3_c`` has ``μ_F = Σ_c E[log L3_c]`` and ``σ_F² = Σ_{c,c'} Cov`` (not the
sum of variances). Constants outside the cells (stem, residual blocks, head) do not depend
on α and are left out, as for DARTS.
"""

from __future__ import annotations

import itertools

import torch

from robustnas.lipschitz.moments import lognormal_sums
from robustnas.space.nb201.genotype import EDGES

PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
"""Edge indices (into :data:`EDGES`) of the four paths from node 0 to node 3."""


def path_terms(num_ops: int, skip_ops: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Every term as flat indices ``e * num_ops + o`` of its (edge, op) choices."""
    ops = [o for o in range(num_ops) if o not in skip_ops]
    terms = []
    for path in PATHS:
        for choice in itertools.product(ops, repeat=len(path)):
            terms.append(tuple(e * num_ops + o for e, o in zip(path, choice)))
    return terms


def nb201_log_moments(loc: torch.Tensor, cov: torch.Tensor, lambdas: torch.Tensor,
                      none_index: int | None = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(μ_F, σ_F²)`` of ``log Π_cells L3_c``.

    ``loc`` (6, K) and ``cov`` (6K, 6K) describe the Gaussian of log α (row-major flat
    order), ``lambdas`` is (cells, 6, K) non-negative. Differentiable in loc and cov.
    """
    n_edges, n_ops = loc.shape
    if n_edges != len(EDGES) or lambdas.shape[1:] != loc.shape:
        raise ValueError(f"expected loc (6, K) and lambdas (cells, 6, K), got "
                         f"{tuple(loc.shape)} and {tuple(lambdas.shape)}")
    terms = path_terms(n_ops, () if none_index is None else (none_index,))
    A = torch.zeros(len(terms), n_edges * n_ops, dtype=torch.float64, device=loc.device)
    for t, idx in enumerate(terms):
        A[t, list(idx)] = 1.0
    lam = lambdas.double().reshape(lambdas.shape[0], -1)
    coef = torch.stack([lam[:, list(idx)].prod(dim=1) for idx in terms], dim=1)
    m = A @ loc.double().reshape(-1)
    k = A @ cov.double() @ A.T
    mu, log_cov = lognormal_sums(coef, m, k)
    return mu.sum(), log_cov.sum()


def cell_bound(weights: torch.Tensor, lambdas: torch.Tensor) -> torch.Tensor:
    """``L3`` of each cell for concrete weights (6, K): the DAG recursion, (cells,)."""
    e = (weights.unsqueeze(0) * lambdas).sum(dim=2)  # (cells, 6)
    l1 = e[:, 0]
    l2 = e[:, 1] + e[:, 2] * l1
    return e[:, 3] + e[:, 4] * l1 + e[:, 5] * l2
