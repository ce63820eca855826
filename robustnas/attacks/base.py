"""The attack interface and the ``ATTACKS`` registry.

An attack is built by name with :func:`make_attack` (``"clean"``, ``"fgsm"``, ``"pgd20"``,
``"cw"``, ``"autoattack"``, ...). A trailing number sets the step count of attacks that
have one (``pgd7``, ``pgd100``, ``cw50``). ``Attack.run`` returns, per sample, whether the
model still classifies the attacked input correctly, so that the per-sample worst case
over several attacks can be taken ("robust accuracy" = correct under every attack run).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from robustnas.attacks.pgd import logits_of
from robustnas.errors import UsageError
from robustnas.registry import Registry


@dataclass
class AttackOutput:
    """Per-sample correctness (bool, shape (N,)) after the attack.

    ``components`` holds, for composite attacks such as AutoAttack, the cumulative
    per-sample correctness after each of their parts (name → bool tensor). Attacks that
    run a library may return its ``log`` lines and the ``warnings`` among them (for
    AutoAttack: its checks for gradient masking), and how many model calls
    (``model_calls``) and images through the model (``model_images``) they cost.
    """

    correct: torch.Tensor
    components: dict[str, torch.Tensor] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model_calls: int = 0
    model_images: int = 0


class Attack:
    """An evasion attack in [0, 1] pixel space under an L∞ budget ``eps``.

    Subclasses implement :meth:`perturb` (or override :meth:`run`). Attacks never change
    the model's train/eval mode: evaluation puts the model in eval mode first.
    """

    name: str = "attack"
    #: whether the attack uses gradients (used by the gradient-masking checks)
    white_box: bool = True

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Adversarial images for ``(x, y)`` within the ε-ball, in [0, 1]."""
        raise NotImplementedError

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
            generator: torch.Generator | None = None) -> AttackOutput:
        """Per-sample correctness of ``model`` on the attacked batch."""
        x_adv = self.perturb(model, x, y, eps, generator)
        with torch.no_grad():
            correct = logits_of(model, x_adv).argmax(1) == y
        return AttackOutput(correct)

    def describe(self) -> dict[str, Any]:
        """The attack's settings, for the report."""
        return {"name": self.name}


AttackFactory = Callable[..., Attack]

#: name → factory(steps: int | None = None, **options) -> Attack; every module of
#: :mod:`robustnas.attacks` may register attacks (imported on first lookup).
ATTACKS: Registry[AttackFactory] = Registry("attack", discover=("robustnas.attacks",))

#: Registered attacks that accept a step count as a name suffix (``pgd20``).
STEPPED: set[str] = set()

_NAME = re.compile(r"^(?P<base>[a-z][a-z-]*?)(?P<steps>\d+)?$")


def register_attack(name: str, stepped: bool = False) -> Callable[[AttackFactory], AttackFactory]:
    """Decorator registering an attack factory; ``stepped`` allows ``name<k>`` spellings."""

    def decorator(factory: AttackFactory) -> AttackFactory:
        ATTACKS.add(name, factory)
        if stepped:
            STEPPED.add(name)
        return factory

    return decorator


def make_attack(name: str, **options: Any) -> Attack:
    """Build an attack from its name (``pgd20``, ``cw``, ``autoattack``...) and options.

    Options not understood by an attack's factory are ignored, so one option set (e.g.
    ``restarts``) can be passed to every attack of a list.
    """
    text = name.strip().lower()
    if text in ATTACKS:
        base, steps = text, None
    else:
        match = _NAME.match(text)
        if not match or match["base"] not in ATTACKS or match["steps"] is None:
            raise UsageError(f"unknown attack {name!r} (choose from: "
                             f"{', '.join(attack_names())})")
        base, steps = match["base"], int(match["steps"])
        if base not in STEPPED:
            raise UsageError(f"attack {base!r} takes no step count (got {name!r})")
        if steps < 1:
            raise UsageError(f"attack {name!r}: the number of steps must be at least 1")
    factory = ATTACKS.get(base)
    accepted = getattr(factory, "options", ())
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    if base in STEPPED:
        return factory(steps, **kwargs)  # named canonically: "pgd" -> "pgd20"
    attack = factory(**kwargs)
    attack.name = base
    return attack


def parse_attack_list(text: str | list[str], **options: Any) -> list[Attack]:
    """Parse ``"clean,fgsm,pgd20"`` (or a list of names) into attacks; duplicates dropped."""
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip().lower() for n in names if n.strip()]
    if not names:
        raise UsageError("no attack given (e.g. --attacks clean,fgsm,pgd20)")
    seen: dict[str, Attack] = {}
    for n in names:
        attack = make_attack(n, **options)
        seen.setdefault(attack.name, attack)
    return list(seen.values())


def attack_names() -> list[str]:
    """Registered names as users spell them (``pgd<k>`` for stepped attacks)."""
    names = sorted(ATTACKS.names(), key=lambda n: (_ORDER.index(n) if n in _ORDER else 99))
    return [f"{n}<k>" if n in STEPPED else n for n in names]


_ORDER = ["clean", "fgsm", "pgd", "cw", "autoattack", "apgd-ce", "apgd-t", "fab-t", "square"]
