"""epe_nas (Lopes et al., "EPE-NAS: Efficient Performance Estimation Without Training for
Neural Architecture Search", ICANN 2021).

With J the input-Jacobian rows of :mod:`~robustnas.tables.zero_cost.jacob_cov` grouped by
label, each class c scores s_c = Σ_{i,j} log(|corrcoef(J_c)_{ij}| + k), k = 1e-5 (divided by
the class's number of images when there are more than 100 classes), and the network scores
Σ_c Σ_c' |s_c − s_c'| / C', C' the number of classes in the batch: classes whose
Jacobians correlate differently are told apart. As in the references, a class with one image
has corrcoef = 1 (s_c = log(1 + k)) and a class whose correlations are not finite is left
out. Train mode.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robustnas.tables.zero_cost.base import register_proxy
from robustnas.tables.zero_cost.jacob_cov import K, input_jacobian_rows


def per_class_score(jac: np.ndarray, labels: np.ndarray, num_classes: int,
                    k: float = K) -> float:
    """The EPE-NAS score of Jacobian rows ``jac`` with ``labels``."""
    scores = []
    for c in dict.fromkeys(labels.tolist()):  # classes in order of first appearance
        with np.errstate(all="ignore"):
            corr = np.atleast_1d(np.corrcoef(jac[labels == c]))
        if not np.all(np.isfinite(corr)):
            continue
        s = float(np.sum(np.log(np.abs(corr) + k)))
        scores.append(s / len(corr) if num_classes > 100 else s)
    if not scores:
        return float("nan")
    a = np.asarray(scores)
    return float(np.abs(a[:, None] - a[None, :]).sum() / len(a))


@register_proxy("epe_nas", "Lopes et al., ICANN 2021",
                "how differently the classes' input Jacobians correlate")
def epe_nas(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """The EPE-NAS score at initialisation."""
    model.train()
    return per_class_score(input_jacobian_rows(model, x), y.numpy(), num_classes)
