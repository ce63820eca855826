"""DrNAS (Chen et al., "DrNAS: Dirichlet Neural Architecture Search", ICLR 2021): the
mixing weights of every edge are Dirichlet random variables, learnt by their pathwise
gradient, with a regulariser on the concentration.

``setup`` installs :class:`~robustnas.space.dirichlet_sampler.DirichletArchSampler` on the
supernet (as the Lipschitz regulariser installs its log-normal sampler): from then on every
training pass, α step and weight step, mixes the operations with w_e ~ Dir(β_e),
β_e = ELU(α_e) + 1, and eval passes and the genotype use the Dirichlet mean. α stays the
supernet's own parameter, so the α optimiser, checkpoints and the other regularisers see
it as in DARTS. DrNAS minimises E_{w ~ Dir(β)} L_val(w, weights) over α, plus

* ``reg_type: l2`` (the authors' default): λ‖α‖² as coupled weight decay in the α optimiser
  (their ``Architect`` gives Adam ``weight_decay = reg_scale = 1e-3``). That is exactly the
  search's own α optimiser with its default ``arch_weight_decay`` 1e-3, so this regulariser
  then adds no term; the scale is ``arch_weight_decay`` (``reg_scale`` is refused here, to
  avoid two settings for one number);
* ``reg_type: kl``: the term added to the α loss

      reg_scale · Σ_{cell kinds} Σ_{edges e} KL( Dir(β_e) ‖ Dir(1) ),

  the anchor Dir(1, ..., 1) being the uniform distribution on the simplex
  (``_get_kl_reg`` in ``DARTS-space/model_search.py`` and ``201-space/search_model.py``),
  ``reg_scale`` 1e-3 by default (the authors' note: "default value is proper for l2, for kl
  you might adjust reg_scale to match l2"). Their Adam has no weight decay in this mode: set
  ``arch_weight_decay: 0`` to reproduce it. The weight step is not regularised (their weight
  step calls the criterion, not ``_loss``).

A supernet rebuilt from a checkpoint (``robustnas derive``, evaluation) has no sampler
installed (:func:`robustnas.space.kinds.rebuild`, as for the Lipschitz sampler), so it
ranks by softmax(α): the ``derive: softmax`` rule, the same operation on every edge as the
mean, possibly other kept edges of a DARTS node than the search's own genotype.

Checked against a minimal port of the authors' sampling and KL term on identical α and
generator state in ``tests/test_sdarts_drnas_wobjective.py``. Not implemented: DrNAS'
progressive learning (partial channels k and pruning of the operation set between stages,
``train_search_progressive.py``), which is a relaxation of the supernet, not of α; the
authors' hyper-parameters that differ from DARTS' (α learning rate 6e-4 in the DARTS space,
weight learning rate 0.1) are the search's own settings (``arch_lr``, ``w_lr``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributions import Dirichlet, kl_divergence

from robustnas.errors import UsageError
from robustnas.search.regularizers._options import Option, parse_options
from robustnas.search.regularizers.base import REGULARIZERS, Regularizer, StepContext
from robustnas.search.regularizers.beta import alphas
from robustnas.space.dirichlet_sampler import DERIVATIONS, DirichletArchSampler, concentration

OPTIONS = {
    "reg_type": Option(str, "l2", choices=("l2", "kl")),
    "reg_scale": Option(float, 1e-3, "non-negative", lambda v: v >= 0),
    "derive": Option(str, "mean", choices=DERIVATIONS),
}


def kl_to_uniform(parameters: list[torch.Tensor]) -> torch.Tensor:
    """Σ over every edge of KL(Dir(ELU(α_e) + 1) ‖ Dir(1))."""
    total = None
    for alpha in parameters:
        beta = concentration(alpha.float())
        kl = kl_divergence(Dirichlet(beta), Dirichlet(torch.ones_like(beta))).sum()
        total = kl if total is None else total + kl
    return total


@REGULARIZERS.register("drnas")
class DrNAS(Regularizer):
    """Installs the Dirichlet sampler; with ``reg_type: kl`` adds reg_scale·ΣKL to the α loss."""

    reuses_step_graph = False  # the KL is a function of α alone
    incompatible = {"lipschitz": "both install an architecture sampler "
                                 "(Dirichlet and log-normal)"}

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = parse_options("drnas", OPTIONS, options)
        if self.options["reg_type"] == "l2" and "reg_scale" in options:
            raise UsageError("regularizer drnas: with reg_type l2 the scale is the α "
                             "optimiser's weight decay: set arch_weight_decay (default 1e-3, "
                             "the authors' reg_scale), not reg_scale")
        self.phases = frozenset({"arch"} if self.options["reg_type"] == "kl" else ())
        self.sampler: DirichletArchSampler | None = None

    def setup(self, model: nn.Module) -> None:
        """Install the Dirichlet sampler; a model without ``set_arch_sampler`` is refused."""
        if not callable(getattr(model, "set_arch_sampler", None)):
            raise UsageError("regularizer drnas needs a supernet with an arch sampler, got "
                             f"{type(model).__name__}")
        self.sampler = DirichletArchSampler(derive=self.options["derive"])
        model.set_arch_sampler(self.sampler)

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        """reg_scale·ΣKL(Dir(β)‖Dir(1)) and the KL to log."""
        kl = kl_to_uniform(alphas(ctx.model))
        return self.options["reg_scale"] * kl.to(ctx.loss.dtype), {"kl": float(kl.detach())}
