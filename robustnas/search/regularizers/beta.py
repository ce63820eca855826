"""β-DARTS' beta-decay regularisation (Ye et al., CVPR 2022): keep α from drifting apart.

The term added to the α loss at epoch e (0-based) is

    term = λ(e) · (1/|E|) Σ_{edges k} log Σ_{ops o} exp(α_{k,o}),    λ(e) = λ₀ + s·e,

the mean over every edge of every cell of the log-sum-exp of its architecture parameters
(the smooth maximum). Its gradient with respect to α_k is λ(e)·softmax(α_k)/|E|, so it decays
each parameter in proportion to its own softmax weight ("beta decay"): α values stay close
together, which the paper shows prevents DARTS' collapse to parameter-free operations and
makes the softmax weights better comparable. Only α is regularised, never the parameters
of an arch sampler (e.g. the log-normal method's scales).

**Defaults = the authors' code** (``optimizers/darts/architect.py``, ``mlc_loss`` and
``_backward_step``: ``weights = 0 + 50*epoch/100``): λ₀ = 0, slope s = 0.5 per epoch, so
over DARTS' 50 epochs λ grows from 0 to 24.5. The reference applies it in the first-order
α step only; here it is a regulariser like the others, so it also composes with the
second-order step, AdvRush and the Lipschitz method, on DARTS and NB201. Checked against
the reference formula on identical α in ``tests/test_stability_regularizers.py``.
"""

from __future__ import annotations

from typing import Any

import torch

from robustnas.search.regularizers._options import Option, parse_options
from robustnas.search.regularizers.base import REGULARIZERS, Regularizer, StepContext

OPTIONS = {
    "lambda0": Option(float, 0.0, "non-negative", lambda v: v >= 0),
    "slope": Option(float, 0.5, "non-negative", lambda v: v >= 0),
    "start_epoch": Option(int, 0, "0 or more", lambda v: v >= 0),
}


def alphas(model: torch.nn.Module) -> list[torch.Tensor]:
    """The supernet's architecture parameters α (its arch sampler's parameters left out)."""
    named = getattr(model, "named_arch_parameters", None)
    if named is None:
        return []
    return [p for name, p in named() if name.rpartition(".")[2].startswith("alpha")]


def beta_decay(parameters: list[torch.Tensor]) -> torch.Tensor:
    """Mean over all edges (rows) of the log-sum-exp of their α."""
    rows = torch.cat([p.reshape(-1, p.shape[-1]) for p in parameters])
    return torch.logsumexp(rows, dim=-1).mean()


@REGULARIZERS.register("beta")
class BetaDecay(Regularizer):
    """λ(e) · mean log-sum-exp of α on the α step (λ(e) = lambda0 + slope·e)."""

    reuses_step_graph = False  # a function of α alone

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = parse_options("beta", OPTIONS, options)

    def active(self, epoch: int) -> bool:  # noqa: D102
        return epoch >= self.options["start_epoch"]

    def weight(self, epoch: int) -> float:
        """λ at ``epoch``."""
        return self.options["lambda0"] + self.options["slope"] * epoch

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted term, and the unweighted mean log-sum-exp and λ to log."""
        params = alphas(ctx.model)
        if not params:
            return ctx.loss.new_zeros(()), {}
        value = beta_decay(params)
        lam = self.weight(ctx.epoch)
        return lam * value.to(ctx.loss.dtype), {"lse": float(value.detach()), "lambda": lam}
