"""Dirichlet architecture sampling (DrNAS: Chen et al., "DrNAS: Dirichlet Neural
Architecture Search", ICLR 2021): every edge's mixing weights are a draw from a Dirichlet.

For edge e with architecture parameters α_e (one per operation) the concentration is

    β_e = ELU(α_e) + 1     (> 0; the authors' code, ``F.elu(x) + 1`` in ``process_step_vector``)

and a training pass uses w_e ~ Dir(β_e), drawn with the reparameterised (implicit,
"pathwise") gradient of :meth:`torch.distributions.Dirichlet.rsample`, so α learns through
the sample. Draws are on the simplex (non-negative, summing to 1 per edge) and independent
across edges and passes. One batched draw over all edges of a cell kind consumes the
generator as the authors' draw per edge does (``torch.stack`` over rows): the same gamma
variates, equal to float rounding (1.5e-8 in ``tests/test_sdarts_drnas_wobjective.py``).

**Eval mode and derivation.** In eval mode a pass uses the Dirichlet mean β_e / Σ_o β_e,o
(deterministic validation; the authors' supernet samples in eval mode too). The genotype is
derived from the mean (``derive: mean``, as the paper and its README describe: "the current
architecture selected by Dirichlet mean"); ``derive: softmax`` ranks by softmax(α) as the
authors' ``genotype()`` does. Both choose the same operation on every edge (ELU + 1 and the
softmax are increasing in α); they can differ in which two edges a DARTS node keeps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robustnas.space.arch_sampler import ArchSampler, CellWeights

DERIVATIONS = ("mean", "softmax")


def concentration(alpha: torch.Tensor) -> torch.Tensor:
    """β = ELU(α) + 1, the Dirichlet concentration of every edge (differentiable)."""
    return F.elu(alpha) + 1


def dirichlet_mean(alpha: torch.Tensor) -> torch.Tensor:
    """E[w] = β / Σβ per edge."""
    beta = concentration(alpha)
    return beta / beta.sum(dim=-1, keepdim=True)


class DirichletArchSampler(ArchSampler):
    """Mixing weights w_e ~ Dir(ELU(α_e) + 1) in training mode, the mean in eval mode."""

    def __init__(self, derive: str = "mean") -> None:
        super().__init__()
        if derive not in DERIVATIONS:
            raise ValueError(f"derive must be one of {DERIVATIONS}, got {derive!r}")
        self.derive = derive

    def forward(self, alpha: torch.Tensor, reduction: bool) -> CellWeights:  # noqa: D102
        if not self.training:
            return CellWeights(ops=dirichlet_mean(alpha))
        # Sampled in float32: the gamma sampler has no reduced-precision kernels.
        beta = concentration(alpha.float())
        return CellWeights(ops=torch.distributions.Dirichlet(beta).rsample())

    def derivation_weights(self, alpha: torch.Tensor, reduction: bool) -> torch.Tensor:
        """The Dirichlet mean (``derive: mean``) or softmax(α) (``derive: softmax``)."""
        with torch.no_grad():
            if self.derive == "softmax":
                return torch.softmax(alpha.detach(), dim=-1)
            return dirichlet_mean(alpha.detach())
