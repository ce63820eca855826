"""AutoAttack (Croce & Hein, 2020) through the ``torchattacks`` library (optional extra).

Registered attacks: ``autoattack`` (the standard L∞ version: APGD-CE, then APGD-T, FAB-T
and Square, each run only on the samples every earlier part failed to fool) and its parts
individually as ``apgd-ce``, ``apgd-t``, ``fab-t`` and ``square`` (each on every clean-correct
sample).

Choice of library (checked in this environment, torch 2.13 CPU, no usable torchvision):

* ``autoattack`` (fra31/auto-attack, the reference code) is not published on PyPI, so it
  cannot be a declared dependency.
* ``torchattacks`` 3.5.1 (the latest release): pure PyTorch, small (~1.6 MB), contains all
  four standard parts (``APGD``, ``APGDT``, ``FAB``, ``Square``). Its metadata declares
  ``torchvision>=0.8.2`` and ``requests~=2.25.1``, but no module of the package imports
  either (checked by reading the wheel), and it imports and runs here without them. The
  ``requests~=2.25.1`` pin would downgrade an unrelated package, so the recommended install
  is ``pip install --no-deps "torchattacks==3.5.1"``. robustnas deliberately declares no
  ``autoattack`` extra: pip cannot apply ``--no-deps`` to one requirement of an extra, so
  ``pip install robustnas[autoattack]`` would pull torchvision (which pins its own torch
  build) and downgrade requests.
* ``adversarial-robustness-toolbox`` 1.20 (clean dependencies: numpy, scipy,
  scikit-learn, six, setuptools, tqdm) imports here too, but has no FAB and its
  ``AutoAttack`` defaults to a different ensemble (PGD, APGD-CE/DLR, DeepFool, Square)
  and goes through NumPy arrays, so it would not reproduce "AutoAttack standard".

Deviation from ``torchattacks.AutoAttack`` (kept on purpose): its "standard" version runs
APGD/APGD-T/FAB with the library's default 10 iterations and with ``num_classes - 1``
target classes. We assemble the parts ourselves with the reference settings: 100
iterations for APGD-CE, APGD-T and FAB-T, 9 target classes (fewer when the dataset has
fewer than 10 classes), one restart each, Square with 5000 queries and p_init = 0.8.
``aa_steps``/``aa_queries`` options change these (for quick looks only; figures obtained
that way are not "AutoAttack standard"). The library reseeds PyTorch's global RNG; we run
it inside :func:`torch.random.fork_rng` so the caller's RNG stream is not disturbed, and
clear any parameter gradients the library leaves behind. Returned images are projected
onto the ε-ball and [0, 1] before they are scored, so a library bug can never make a
figure look worse than a valid attack could.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustnas.attacks.base import Attack, AttackOutput, register_attack
from robustnas.attacks.pgd import logits_of
from robustnas.errors import UsageError

INSTALL_HINT = 'pip install --no-deps "torchattacks==3.5.1"'
COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")
_CLASSES = ("APGD", "APGDT", "FAB", "Square")


def torchattacks_status() -> tuple[bool, str]:
    """``(usable, reason)``: whether ``torchattacks`` imports and has the standard parts."""
    try:
        import torchattacks
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"torchattacks is not importable ({first[:120]})"
    missing = [c for c in _CLASSES if not hasattr(torchattacks, c)]
    if missing:
        return False, f"torchattacks {getattr(torchattacks, '__version__', '?')} lacks " \
                      f"{', '.join(missing)}"
    return True, f"torchattacks {getattr(torchattacks, '__version__', '?')}"


def require_torchattacks() -> Any:
    """Import ``torchattacks`` or raise a one-line :class:`UsageError` with the install hint."""
    ok, reason = torchattacks_status()
    if not ok:
        raise UsageError(f"AutoAttack needs the optional package torchattacks ({reason}); "
                         f"install it with: {INSTALL_HINT}")
    import torchattacks
    return torchattacks


def _build(ta: Any, part: str, model: nn.Module, eps: float, num_classes: int, steps: int,
           queries: int, seed: int) -> Any:
    targets = min(9, num_classes - 1)
    if part == "apgd-ce":
        return ta.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=seed,
                       loss="ce", rho=0.75)
    if part == "apgd-t":
        atk = ta.APGDT(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=seed,
                       n_classes=num_classes, rho=0.75)
        atk.n_target_classes = targets
        return atk
    if part == "fab-t":
        atk = ta.FAB(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=seed,
                     multi_targeted=True, n_classes=num_classes)
        atk.n_target_classes = targets
        return atk
    if part == "square":
        return ta.Square(model, norm="Linf", eps=eps, n_queries=queries, n_restarts=1,
                         seed=seed, p_init=0.8, loss="margin", resc_schedule=True)
    raise ValueError(f"unknown AutoAttack part {part!r}")


class LibraryAttack(Attack):
    """A cascade of AutoAttack parts from ``torchattacks`` (one part = that attack alone)."""

    def __init__(self, parts: tuple[str, ...], steps: int = 100, queries: int = 5000,
                 seed: int = 0) -> None:
        self.parts = parts
        self.steps = int(steps)
        self.queries = int(queries)
        self.seed = int(seed)
        self.white_box = parts != ("square",)
        self.name = "autoattack" if len(parts) > 1 else parts[0]
        self._ta = require_torchattacks()
        if self.steps < 1 or self.queries < 1:
            raise UsageError("AutoAttack steps and queries must be at least 1")

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
            generator: torch.Generator | None = None) -> AttackOutput:
        with torch.no_grad():
            logits = logits_of(model, x)
        num_classes = logits.shape[1]
        if num_classes < 4 and any(p in ("apgd-t", "fab-t") for p in self.parts):
            raise UsageError(f"{self.name}: targeted AutoAttack parts need at least 4 classes")
        robust = logits.argmax(1) == y
        components: dict[str, torch.Tensor] = {}
        if eps <= 0:
            return AttackOutput(robust, {f"{self.name}/{p}": robust.clone()
                                         for p in self.parts} if len(self.parts) > 1 else {})
        params = [p for p in model.parameters() if p.grad is None]
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            for part in self.parts:
                idx = robust.nonzero().squeeze(1)
                if idx.numel() > 0:
                    atk = _build(self._ta, part, model, eps, num_classes, self.steps,
                                 self.queries, self.seed)
                    x_sub = x[idx]
                    x_adv = atk(x_sub, y[idx]).detach()
                    x_adv = torch.min(torch.max(x_adv, x_sub - eps), x_sub + eps).clamp(0, 1)
                    with torch.no_grad():
                        still = logits_of(model, x_adv).argmax(1) == y[idx]
                    robust[idx] = still
                if len(self.parts) > 1:
                    components[f"{self.name}/{part}"] = robust.clone()
        for p in params:
            p.grad = None
        return AttackOutput(robust, components)

    def describe(self) -> dict[str, Any]:
        ok, version = torchattacks_status()
        return {"name": self.name, "kind": "autoattack", "library": version,
                "parts": list(self.parts), "steps": self.steps, "square_queries": self.queries,
                "target_classes": "min(9, classes-1)", "seed": self.seed,
                "standard": self.steps == 100 and self.queries == 5000}


def _factory(parts: tuple[str, ...]):
    def factory(aa_steps: int = 100, aa_queries: int = 5000, seed: int = 0) -> Attack:
        return LibraryAttack(parts, aa_steps, aa_queries, seed)

    factory.options = ("aa_steps", "aa_queries", "seed")  # type: ignore[attr-defined]
    return factory


register_attack("autoattack")(_factory(COMPONENTS))
for _part in COMPONENTS:
    register_attack(_part)(_factory((_part,)))
