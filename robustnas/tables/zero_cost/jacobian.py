"""jacobian_frobenius: the mean over the batch of ‖∂f(x)/∂x‖_F, the Frobenius norm of the
input-logit Jacobian (Hoffman et al., "Robust Learning with Jacobian Regularization", 2019;
a robustness proxy at initialisation in Jung et al., ICLR 2023). Eval mode (batch norm with
its initial running statistics, so that images do not interact). Exact Jacobian, see
:func:`robustnas.evaluation.measures.jacobian_frobenius`.
"""

from __future__ import annotations

import torch
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy


@register_proxy("jacobian_frobenius", "Jung et al., ICLR 2023",
                "input-logit Jacobian norm (local sensitivity)")
def jacobian_frobenius(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       num_classes: int) -> float:
    """Mean ‖∂f/∂x‖_F at initialisation."""
    from robustnas.evaluation.measures import jacobian_frobenius as per_sample

    return float(per_sample(model.eval(), x).mean())
