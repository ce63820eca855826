"""The re-derived log-normal Lipschitz bound of NB201 cells against Monte Carlo."""

from __future__ import annotations

import math

import pytest
import torch

from robustnas.space.nb201.lipschitz_moments import (
    PATHS,
    cell_bound,
    nb201_log_moments,
    path_terms,
)


def test_paths_cover_the_dag_and_expansion_is_exact():
    assert len(PATHS) == 4 and len(path_terms(5, (0,))) == 4 + 16 + 16 + 64
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(6, 5, generator=gen, dtype=torch.float64)
    lam = torch.rand(3, 6, 5, generator=gen, dtype=torch.float64)
    lam[:, :, 0] = 0.0
    flat_w, flat_l = w.reshape(-1), lam.reshape(3, -1)
    expanded = torch.stack([sum(flat_l[c, list(t)].prod() * flat_w[list(t)].prod()
                                for t in path_terms(5, (0,))) for c in range(3)])
    assert torch.allclose(expanded, cell_bound(w, lam))


@pytest.mark.parametrize("scale", [0.15, 0.4])
def test_moments_match_monte_carlo(scale):
    gen = torch.Generator().manual_seed(1)
    loc = -1.6 + 0.3 * torch.randn(6, 5, generator=gen, dtype=torch.float64)
    factor = scale * torch.randn(30, 30, generator=gen, dtype=torch.float64) / math.sqrt(30)
    cov = factor @ factor.T + (scale ** 2) * torch.eye(30, dtype=torch.float64)
    cells = 9
    lam = 0.5 + 2.0 * torch.rand(cells, 6, 5, generator=gen, dtype=torch.float64)
    lam[:, :, 0] = 0.0  # none
    lam[:, :, 1] = 1.0  # skip
    mu_f, var_f = nb201_log_moments(loc, cov, lam)
    dist = torch.distributions.MultivariateNormal(loc.reshape(-1), covariance_matrix=cov)
    torch.manual_seed(2)
    a = dist.sample((4000,)).reshape(-1, 6, 5)
    log_f = torch.stack([cell_bound(s.exp(), lam).log().sum() for s in a])
    assert float(log_f.mean()) == pytest.approx(float(mu_f), abs=0.03 * abs(float(mu_f)))
    assert float(log_f.std()) == pytest.approx(math.sqrt(float(var_f)), rel=0.15)
    # The constraint's quantile: Pr(log λ_F <= μ + 1.2816 σ) ≈ 0.9.
    q = float(mu_f) + 1.2816 * math.sqrt(float(var_f))
    assert float((log_f <= q).double().mean()) == pytest.approx(0.9, abs=0.05)


def test_shared_alpha_makes_cells_correlated():
    """With identical cells, σ_F grows like the number of cells (perfect correlation),
    not like its square root (independent cells)."""
    loc = torch.full((6, 5), -1.6, dtype=torch.float64)
    cov = 0.1 * torch.eye(30, dtype=torch.float64)
    lam = torch.ones(1, 6, 5, dtype=torch.float64)
    _, v1 = nb201_log_moments(loc, cov, lam)
    _, v4 = nb201_log_moments(loc, cov, lam.repeat(4, 1, 1))
    assert math.sqrt(float(v4)) == pytest.approx(4 * math.sqrt(float(v1)), rel=1e-9)
    loc.requires_grad_(True)
    mu, var = nb201_log_moments(loc, cov, lam)
    (mu + var).backward()
    assert loc.grad is not None and torch.isfinite(loc.grad).all()


def test_regularizer_on_nb201_supernet_and_search(tmp_path):
    """The log-normal Lipschitz regulariser installs on an NB201 supernet, gives a finite
    term with gradients for α and the sampler, and a search with it runs on digits."""
    from robustnas.search import run_search
    from robustnas.search.regularizers.base import REGULARIZERS
    from robustnas.space.nb201.supernet import NB201SuperNet

    torch.manual_seed(0)
    model = NB201SuperNet(C=4, N=1, in_channels=1)
    reg = REGULARIZERS.get("lipschitz")(lambda_bar=0.5)
    reg.setup(model)
    lam = reg.lipschitz_constants((1, 8, 8))
    assert lam.shape == (3, 6, 5) and torch.all(lam[:, :, 0] == 0) and torch.all(lam[:, :, 1] == 1)
    mu, sigma = reg.log_bound(lam)
    assert reg.num_nodes == 9 and torch.isfinite(mu) and float(sigma.detach()) > 0
    (mu + sigma).backward()
    assert model.alpha.grad is not None
    assert any(p.grad is not None for n, p in model.named_arch_parameters() if n != "alpha")
    result = run_search(overrides=dict(
        space="nb201", dataset="digits", epochs=1, batch_size=16, C=2, layers=3,
        max_steps_per_epoch=2, out=str(tmp_path / "s"), regularizer="lipschitz"),
        show_progress=False)
    assert "lipschitz" in str(result.genotype.provenance.get("regularizer"))
    assert any("mu_F" in k for k in result.history[-1])
