"""The training-objective interface, its registry and the helpers objectives share.

An objective turns one training batch into a scalar loss (with its autograd graph) plus the
detached logits the trainer turns into clean/robust training metrics. A new objective is a
new file in this package that decorates its class with ``@OBJECTIVES.register("name")``;
the registry imports the package's modules on its first lookup.

Objectives receive the *training* model, which may be wrapped in DistributedDataParallel and
returns ``(logits, aux_logits)`` in train mode when it has an auxiliary head. Adversarial
examples are generated on :class:`MainLogits`, a view of the unwrapped module that always
returns the main logits (attacks need plain logits, and must not go through DDP, whose
reducer expects exactly one backward per forward).

BN mode while attacking (``attack_bn``): ``"eval"`` (default) runs the attack with the model
in eval mode (BN uses running statistics, no drop-path, the auxiliary head is off), as the
official TRADES code, the Madry lab ``robustness`` library and AdvRush do; the training
forward on the adversarial batch is in train mode. ``"train"`` attacks in train mode
(batch statistics, drop-path active; every attack forward also updates BN running
statistics), as some other PGD-AT code bases do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from robustnas.registry import Registry

Autocast = Callable[[], Any]

ATTACK_BN_MODES = ("eval", "train")


@dataclass
class ObjectiveSettings:
    """The options an objective reads (a subset of the retraining config, resolved)."""

    eps: float = 8 / 255
    step_size: float = 2 / 255
    steps: int = 7
    random_start: bool = True
    trades_beta: float = 6.0
    auxiliary_weight: float = 0.0
    attack_bn: str = "eval"
    clean_metrics: bool = True


@dataclass
class ObjectiveOutput:
    """One batch's result: ``loss`` carries the graph; everything else is detached.

    ``clean_logits``/``adv_logits`` are the main logits on the clean and on the adversarial
    batch (``None`` where not computed); ``extras`` holds objective-specific scalars to log
    (e.g. the TRADES KL term), as 0-dim tensors.
    """

    loss: torch.Tensor
    clean_logits: torch.Tensor | None = None
    adv_logits: torch.Tensor | None = None
    x_adv: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective:
    """Base class of training objectives; subclasses implement :meth:`compute`.

    Class attributes: ``adversarial`` (whether a robust training metric exists),
    ``clean_metric_mode`` (the mode the clean training accuracy is measured in: ``train``,
    the training forward itself, or ``eval``, a separate eval-mode forward, see
    :meth:`eval_clean_logits`) and ``defaults``, the objective's default values for config
    fields the user left unset (see :class:`robustnas.train.config.RetrainConfig`).
    """

    name: ClassVar[str] = ""
    adversarial: ClassVar[bool] = True
    clean_metric_mode: ClassVar[str] = "train"
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, settings: ObjectiveSettings | None = None,
                 autocast: Autocast = contextlib.nullcontext) -> None:
        self.settings = settings or ObjectiveSettings()
        self.autocast = autocast

    @classmethod
    def default_step_size(cls, eps: float, steps: int) -> float:
        """Attack step size when the user gives none: ε/4 (2/255 at ε = 8/255)."""
        return eps / 4

    def compute(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ObjectiveOutput:
        """Loss and logits for one batch; ``model`` is in train mode on entry and on exit."""
        raise NotImplementedError

    # -- helpers shared by the objectives -------------------------------------------------
    def forward(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor,
                                                                  torch.Tensor | None]:
        """Training forward under autocast: ``(logits, aux_logits or None)`` in float32."""
        with self.autocast():
            out = model(x)
        if isinstance(out, (tuple, list)):
            return out[0].float(), out[1].float()
        return out.float(), None

    def supervised_loss(self, logits: torch.Tensor, aux: torch.Tensor | None,
                        y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the main logits plus ``auxiliary_weight`` × that of the aux head."""
        loss = F.cross_entropy(logits, y)
        weight = self.settings.auxiliary_weight
        if aux is not None and weight > 0:
            loss = loss + weight * F.cross_entropy(aux, y)
        return loss

    def view(self, model: nn.Module) -> MainLogits:
        """The main-logits view of the unwrapped module, for attacks and metrics."""
        return MainLogits(unwrap(model), self.autocast)

    def eval_clean_logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
        """Clean logits in eval mode without gradients (for the clean training metric)."""
        if not self.settings.clean_metrics:
            return None
        module = unwrap(model)
        with torch.no_grad(), mode(module, training=False):
            return self.view(module)(x)


class MainLogits(nn.Module):
    """Wraps a model so that ``forward`` returns float32 main logits only (under autocast)."""

    def __init__(self, model: nn.Module, autocast: Autocast = contextlib.nullcontext) -> None:
        super().__init__()
        self.model = model
        self.autocast = autocast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            out = self.model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float()


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel (or similar ``.module``) wrapper."""
    return getattr(model, "module", model)


@contextlib.contextmanager
def mode(module: nn.Module, training: bool) -> Iterator[nn.Module]:
    """Temporarily put ``module`` in train or eval mode; restores the previous mode."""
    was_training = module.training
    module.train(training)
    try:
        yield module
    finally:
        module.train(was_training)


def attack_mode(module: nn.Module, attack_bn: str) -> contextlib.AbstractContextManager:
    """The mode adversarial examples are generated in (see the module docstring)."""
    if attack_bn not in ATTACK_BN_MODES:
        raise ValueError(f"attack_bn must be one of {ATTACK_BN_MODES}, got {attack_bn!r}")
    return mode(unwrap(module), training=attack_bn == "train")


#: Every module of this package registers its objectives here (imported on first lookup).
OBJECTIVES: Registry[type[Objective]] = Registry(
    "objective", discover=("robustnas.train.objectives",))
