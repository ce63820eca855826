"""``gdas`` (Dong & Yang, "Searching for a Robust Neural Architecture in Four GPU Hours",
CVPR 2019): one operation per edge per pass, drawn by Gumbel-softmax.

**Sampling** (training mode), per cell type, as the authors' code does: Gumbel noise
``g = -log(E)``, ``E ~ Exp(1)``; ``p = softmax((log_softmax(α) + g) / τ)`` per edge; the
drawn operation is ``argmax p``; the weights are straight-through,
``h = onehot − stop_gradient(p) + p``: one-hot in value, softmax in gradient. Each mixed op
evaluates only its drawn operation, ``h_a · op_a(x)`` (the supernet's single-path pass,
:class:`~robustnas.space.arch_sampler.CellWeights` ``index``), so a step costs about one
operation per edge, and α gets ``∂L/∂h_a · ∂p_a/∂α``. A draw whose noise is not finite is
drawn again (the authors' loop; here at most 100 times, then the pass goes on, so that a
non-finite α reaches the divergence guard instead of looping forever).

**Temperature** τ falls linearly from ``tau_max`` = 10 at the first epoch to ``tau_min`` =
0.1 at the last, ``τ(e) = τ_max − (τ_max − τ_min)·e/(E − 1)`` (the authors' schedule and
values; τ_max for a one-epoch search). The sampler learns the epoch from the search step:
:func:`robustnas.search.architect.announce_epoch` calls the supernet's ``set_epoch`` before
the α step and before the weight step (also during warm-up, when there is no α step), so the
loop itself needs no change and a resumed run has the right τ from its first step. τ is
therefore not part of the checkpoint; a supernet outside a search keeps τ_max until told.

**Evaluation mode** takes the argmax of α instead of a draw (no noise; the same
straight-through weights with τ), so validation, the Hessian probes and the Lipschitz bound
of the supernet are deterministic and see the network the derivation is heading for. The
authors' code draws in evaluation too; that is the one deviation.

**Derivation**: argmax of α, as the authors do: on NAS-Bench-201 the argmax operation of
every edge (``none`` allowed, their code's rule, which is this space's own); on DARTS the
DARTS rule (best non-``none`` operation per edge, the two inputs whose best softmax(α) is
largest). The authors' DARTS-space code ranks (operation, input) pairs and may keep two
operations from one input; we keep DARTS' distinct inputs. Their NAS-Bench-201 code also
adds the unsampled operations' (zero-valued) weights to each edge as scalars, giving them a
gradient as if their output were all ones; we follow their DARTS-space code, which does not.
GDAS' fixed reduction cell variant (GDAS-FRC) is not offered.

**With the rest of the search.** First order only (the authors' is first order): second
order is refused, because its unrolled and shifted forward passes would each draw another
path, and the finite difference of gradients of different networks is noise. AdvRush works:
with its default ``bn_mode: eval`` the curvature is that of the argmax path, its gradient
reaching α through the straight-through weights; with ``bn_mode: train`` its direction
pass and its curvature pass draw separate paths (the perturbed and clean inputs share one).
β-DARTS and the Jacobian penalty work unchanged. Refused: the Lipschitz regulariser (its
log-normal sampler would replace the Gumbel sampling, and its bound assumes every
operation's output is mixed in), DrNAS (its Dirichlet sampler would replace it too) and
SDARTS (it perturbs the weights of every operation of an edge, of which GDAS evaluates one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from robustnas.errors import UsageError
from robustnas.options import option
from robustnas.space.arch_sampler import ArchSampler, CellWeights
from robustnas.space.relaxations.base import RELAXATIONS, Relaxation

#: Most draws of the Gumbel noise per pass before going on with a non-finite one.
MAX_DRAWS = 100


@dataclass(frozen=True)
class GdasOptions:
    """Options of ``gdas`` (defaults: the authors' scripts)."""

    tau_max: float = option(10.0, flag="", help="temperature at the first epoch")
    tau_min: float = option(0.1, flag="", help="temperature at the last epoch")


def annealed_tau(epoch: int, total_epochs: int, tau_max: float, tau_min: float) -> float:
    """τ at 0-based ``epoch`` of ``total_epochs``: linear from τ_max to τ_min (GDAS)."""
    if total_epochs <= 1:
        return tau_max
    epoch = min(max(int(epoch), 0), total_epochs - 1)
    return tau_max - (tau_max - tau_min) * epoch / (total_epochs - 1)


def straight_through(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(onehot − stop_gradient(p) + p, argmax)`` with ``p = softmax(logits)`` per row."""
    probs = torch.softmax(logits, dim=-1)
    index = probs.max(-1, keepdim=True)[1]
    one_hot = torch.zeros_like(logits).scatter_(-1, index, 1.0)
    return one_hot - probs.detach() + probs, index


def gumbel_hard(alpha: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One Gumbel-softmax hard draw per row of ``alpha``: straight-through weights and the
    drawn indices (edges, 1), from the global generator."""
    for _ in range(MAX_DRAWS):
        gumbels = -torch.empty_like(alpha).exponential_().log()
        weights, index = straight_through((alpha.log_softmax(dim=-1) + gumbels) / tau)
        if bool(torch.isfinite(gumbels).all()):
            break
    return weights, index


class GumbelSampler(ArchSampler):
    """Single-path mixing weights: a Gumbel draw in training mode, the argmax in eval mode."""

    def __init__(self, tau_max: float, tau_min: float) -> None:
        super().__init__()
        self.tau_max, self.tau_min = float(tau_max), float(tau_min)
        #: The current temperature (set from the epoch by :meth:`set_epoch`).
        self.tau = self.tau_max

    def set_epoch(self, epoch: int, total_epochs: int) -> None:  # noqa: D102
        self.tau = annealed_tau(epoch, total_epochs, self.tau_max, self.tau_min)

    def forward(self, alpha: torch.Tensor, reduction: bool) -> CellWeights:  # noqa: D102
        if self.training:
            weights, index = gumbel_hard(alpha, self.tau)
        else:
            weights, index = straight_through(alpha.log_softmax(dim=-1) / self.tau)
        return CellWeights(ops=weights, index=tuple(index.flatten().tolist()))

    def extra_repr(self) -> str:  # noqa: D102
        return f"tau={self.tau:g}, tau_max={self.tau_max:g}, tau_min={self.tau_min:g}"


@RELAXATIONS.register("gdas")
class GumbelRelaxation(Relaxation):
    """Gumbel-softmax hard sampling of one operation per edge (see the module docstring)."""

    name = "gdas"
    options_type = GdasOptions
    refused_orders = {
        2: "its unrolled and shifted forward passes would each draw another path, so the "
           "finite difference compares different networks (GDAS is first order: use order 1)"}
    refused_regularizers = {
        "lipschitz": "its log-normal sampler would replace the Gumbel sampling, and its "
                     "bound assumes every operation's output is mixed in",
        "drnas": "its Dirichlet sampler would replace the Gumbel sampling",
        "sdarts-rs": "SDARTS perturbs the mixture of every operation of an edge, and GDAS "
                     "evaluates one",
        "sdarts-adv": "SDARTS perturbs the mixture of every operation of an edge, and GDAS "
                      "evaluates one"}

    @property
    def replaceable_sampler(self) -> bool:  # noqa: D102
        return False

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        o = self.options
        if not 0 < o.tau_min <= o.tau_max:
            raise UsageError(f"relaxation gdas: options need 0 < tau_min <= tau_max, got "
                             f"tau_min {o.tau_min:g}, tau_max {o.tau_max:g}")

    def sampler(self, node_sizes: Sequence[int], num_ops: int,
                cell_types: Sequence[str]) -> ArchSampler:  # noqa: D102
        return GumbelSampler(self.options.tau_max, self.options.tau_min)
