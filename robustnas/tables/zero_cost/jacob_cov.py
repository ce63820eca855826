"""jacob_cov (Mellor et al., "Neural Architecture Search without Training", arXiv v1 2020;
as a NAS proxy Abdelfattah et al., ICLR 2021).

J is the N × D matrix of the input gradients of Σ_k f_k(x_n) (one row per image: the
references back-propagate ``ones_like(output)``), Σ_J its N × N correlation matrix
(``np.corrcoef`` of the rows) with eigenvalues λ_i, and the score is
−Σ_i [log(λ_i + k) + 1/(λ_i + k)], k = 1e-5: highest when the images' Jacobians are
uncorrelated (Σ_J = I). Train mode, as in the references. The eigenvalues are those of a
symmetric matrix (``eigvalsh``; the references' ``np.linalg.eig`` gives the same up to
round-off, and a complex or NaN result there is a NaN here).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy

K = 1e-5


def input_jacobian_rows(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The N × D matrix ∂(Σ_k f_k(x_n))/∂x_n (float64)."""
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad()
    out = model(x)
    out.backward(torch.ones_like(out))
    return x.grad.detach().reshape(len(x), -1).double().numpy()


def correlation_score(jac: np.ndarray, k: float = K) -> float:
    """−Σ log(λ + k) + 1/(λ + k) over the eigenvalues λ of corrcoef(jac)."""
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return float("nan")  # a constant row (dead Jacobian) has no correlation
    lam = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(lam + k) + 1.0 / (lam + k)))


@register_proxy("jacob_cov", "Mellor et al., arXiv 2020 (v1)",
                "decorrelation of the images' input Jacobians")
def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """The Jacobian-covariance score at initialisation."""
    model.train()
    return correlation_score(input_jacobian_rows(model, x))
