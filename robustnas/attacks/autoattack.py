"""AutoAttack (Croce & Hein, 2020) through ``pyautoattack`` (optional extra).

The backend is ``pyautoattack``, the package RobustBench requires for AutoAttack, published
on PyPI under Croce and Hein's names (MIT licence, no dependencies). It is a repackaging of
the authors' repository fra31/auto-attack with another API, not a copy of that repository:
the module is ``pyautoattack``, not ``autoattack``; ``AutoAttack`` takes keyword-only
arguments (``attacks=`` instead of ``attacks_to_run``, no ``log_path``), logs to the
``auto-attack`` logger instead of printing, and ``run_standard_evaluation`` takes the images
and labels positionally only and returns ``(images, labels)``. The attacks and their
standard settings are the repository's. Code written for ``from autoattack import
AutoAttack`` does not run against it, and this module does not run against fra31's
package, so the supported range is pinned (``SUPPORTED``, the same as the ``autoattack``
extra in ``pyproject.toml``): install it with ``pip install -e ".[autoattack]"`` or
``pip install "pyautoattack>=0.2.0,<0.3"``; another version is reported as not usable.

Registered attacks:

* ``autoattack``: ``pyautoattack``'s ``AutoAttack(version="standard")`` for L∞: APGD-CE, then
  APGD-T, FAB-T and Square, each run only on the samples every earlier part failed to fool.
* ``apgd-ce``, ``apgd-t``, ``fab-t``, ``square``: each part alone (on every clean-correct
  sample), with the same reference settings (``version="custom"``, one part).

Reference settings (those of ``version="standard"``, kept as built by the library): 100
iterations for APGD-CE, APGD-T and FAB-T, one restart each, 9 target classes for APGD-T and
FAB-T, ρ = 0.75, Square with 5000 queries, p_init = 0.8 and ``resc_schedule=False``.

How the library is driven (and where it deviates, all documented in the report):

* The cascade is run one part at a time through ``run_standard_evaluation`` (setting
  ``attacks_to_run`` to that part, as the library's own ``run_standard_evaluation_individual``
  does), on the samples still robust. The library's single call does exactly this loop
  internally; running it part by part lets us record the accuracy after each part. Every
  part re-seeds PyTorch with ``seed`` as in the single call, so the per-sample outcome is the
  same (a test checks this against one ``run_standard_evaluation`` call).
* With fewer than 10 classes the target classes are ``classes - 1`` (the library's 9 would
  index past the last class); with fewer than 4 classes the targeted parts are refused.
* ``aa_steps``/``aa_queries`` change the iterations/queries; figures obtained that way are
  marked "not standard" in the report and the model card.
* The library's checks for gradient masking and unsuitable models (randomised output,
  probabilities instead of logits, dynamic defences, zero gradients, Square beating the
  white-box parts, too many target classes) log warnings on the ``auto-attack`` logger. We
  capture that logger (the whole log, not only the warnings) and return both, so the report
  lists the warnings and the model card carries the log. ``check_square_sr`` needs the
  accuracy after every part, so we call it ourselves with the cascade's figures.
* The library re-seeds PyTorch's global RNG and (FAB) leaves parameter gradients; we run it
  inside :func:`torch.random.fork_rng` and clear the gradients it created. Its
  ``check_dynamic`` installs a ``sys.settrace`` hook; the previous trace function (debugger,
  coverage) is restored afterwards, and its global call counts are reset before each run
  (the library never resets them, so one flagged model would flag every later one).
  Returned images are projected onto the ε-ball and [0, 1] before they are scored.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import torch
from torch import nn

from robustnas.attacks.base import Attack, AttackOutput, register_attack
from robustnas.attacks.pgd import logits_of
from robustnas.errors import UsageError

SUPPORTED = ((0, 2), (0, 3))
"""``pyautoattack`` versions whose API this module drives: >= 0.2.0, < 0.3 (as the extra)."""
INSTALL_HINT = 'pip install -e ".[autoattack]" (or: pip install "pyautoattack>=0.2.0,<0.3")'
COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")
LOGGER_NAME = "auto-attack"
STANDARD_STEPS = 100
STANDARD_QUERIES = 5000


def autoattack_status() -> tuple[bool, str]:
    """``(usable, reason)``: whether ``pyautoattack`` imports, with its API and a version in
    the supported range."""
    try:
        import pyautoattack
        from pyautoattack import (
            AutoAttack,  # noqa: F401
            checks,  # noqa: F401
        )
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"pyautoattack is not importable ({first[:120]})"
    version = str(getattr(pyautoattack, "__version__", "?"))
    if not version_supported(version):
        return False, (f"pyautoattack {version} is outside the supported range >= 0.2.0, "
                       f"< 0.3 (its API is not fra31/auto-attack's and changes between "
                       f"versions)")
    return True, f"pyautoattack {version}"


def version_supported(version: str) -> bool:
    """Whether ``version`` (``"0.2.0"``) lies in :data:`SUPPORTED`; unparsable: no."""
    try:
        parts = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    low, high = SUPPORTED
    return len(parts) == 2 and low <= parts < high


def require_autoattack() -> Any:
    """Import ``pyautoattack`` or raise a one-line :class:`UsageError` with the install hint."""
    ok, reason = autoattack_status()
    if not ok:
        raise UsageError(f"AutoAttack needs the optional package pyautoattack ({reason}); "
                         f"install it with: {INSTALL_HINT}")
    import pyautoattack
    return pyautoattack


class _Logits(nn.Module):
    """The model's logits only (AutoAttack expects a tensor), counting forward calls."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images += int(x.shape[0])
        return logits_of(self.model, x)


class _Capture(logging.Handler):
    """Collects every record of the ``auto-attack`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))


class _CapturedLog:
    """Context manager: route the library's logger into a :class:`_Capture` only."""

    def __enter__(self) -> _Capture:
        self.logger = logging.getLogger(LOGGER_NAME)
        self.saved = (self.logger.level, self.logger.propagate, sys.gettrace())
        self.handler = _Capture()
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(self.handler)
        return self.handler

    def __exit__(self, *exc: Any) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]
        sys.settrace(self.saved[2])  # check_dynamic ends with sys.settrace(None)


def _build(lib: Any, part: str | None, model: nn.Module, eps: float, num_classes: int,
           steps: int, queries: int, seed: int, device: torch.device) -> Any:
    """A ``pyautoattack.AutoAttack`` object: standard cascade (``part=None``) or one part."""
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    if part is None:
        aa = lib.AutoAttack(model, version="standard", norm="Linf", eps=eps, seed=seed,
                            device=device)
    else:
        aa = lib.AutoAttack(model, version="custom", attacks=[part], norm="Linf", eps=eps,
                            seed=seed, device=device)
        # version="custom" keeps the constructor's defaults (5 restarts for APGD/FAB);
        # use the standard version's values for every part.
        aa.apgd.n_restarts = 1
        aa.fab.n_restarts = 1
        aa.apgd_targeted.n_restarts = 1
        aa.square.n_queries = STANDARD_QUERIES
    if steps != STANDARD_STEPS:  # APGD derives its checkpoints from n_iter at construction
        aa.apgd = APGDAttack(model, n_restarts=1, n_iter=steps, verbose=False, eps=eps,
                             norm="Linf", eot_iter=1, rho=.75, seed=seed, device=device,
                             logger=aa.logger)
        aa.apgd_targeted = APGDAttack_targeted(model, n_restarts=1, n_iter=steps,
                                               verbose=False, eps=eps, norm="Linf",
                                               eot_iter=1, rho=.75, seed=seed,
                                               device=device, logger=aa.logger)
        aa.fab.n_iter = steps
    targets = min(9, num_classes - 1)
    aa.apgd_targeted.n_target_classes = targets
    aa.fab.n_target_classes = targets
    aa.square.n_queries = queries
    return aa


class OfficialAutoAttack(Attack):
    """The AutoAttack cascade (``pyautoattack``), or one of its parts (``parts`` of length one)."""

    def __init__(self, parts: tuple[str, ...], steps: int = STANDARD_STEPS,
                 queries: int = STANDARD_QUERIES, seed: int = 0) -> None:
        self.parts = parts
        self.steps = int(steps)
        self.queries = int(queries)
        self.seed = int(seed)
        self.white_box = parts != ("square",)
        self.name = "autoattack" if len(parts) > 1 else parts[0]
        self._lib = require_autoattack()
        if self.steps < 1 or self.queries < 1:
            raise UsageError("AutoAttack steps and queries must be at least 1")

    @property
    def standard(self) -> bool:
        """Whether the reference iterations and queries are used."""
        return self.steps == STANDARD_STEPS and self.queries == STANDARD_QUERIES

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
            generator: torch.Generator | None = None) -> AttackOutput:
        wrapped = _Logits(model)
        with torch.no_grad():
            logits = wrapped(x)
        num_classes = logits.shape[1]
        if num_classes < 4 and any(p in ("apgd-t", "fab-t") for p in self.parts):
            raise UsageError(f"{self.name}: targeted AutoAttack parts need at least 4 classes")
        robust = logits.argmax(1) == y
        clean_frac = float(robust.float().mean()) if len(y) else 0.0
        components: dict[str, torch.Tensor] = {}
        if eps <= 0 or len(y) == 0:
            comps = {f"{self.name}/{p}": robust.clone() for p in self.parts} \
                if len(self.parts) > 1 else {}
            return AttackOutput(robust, comps)
        fresh = [p for p in model.parameters() if p.grad is None]
        devices = [x.device] if x.device.type == "cuda" else []
        fractions = {"clean": clean_frac}
        from pyautoattack import checks

        for key in checks.funcs:  # the library never resets check_dynamic's global counts,
            checks.funcs[key] = 0  # so one dynamic model would flag every later one
        with torch.random.fork_rng(devices=devices), _CapturedLog() as log:
            for part in self.parts:
                idx = robust.nonzero().squeeze(1)
                if idx.numel() > 0:
                    log.records.append((logging.DEBUG, f"[robustnas] {part}: "
                                        f"{idx.numel()} robust samples attacked"))
                    aa = _build(self._lib, None if len(self.parts) > 1 else part, wrapped,
                                eps, num_classes, self.steps, self.queries, self.seed, x.device)
                    aa.attacks_to_run = [part]
                    x_sub = x[idx]
                    x_adv, _ = aa.run_standard_evaluation(x_sub, y[idx], batch_size=len(idx))
                    x_adv = torch.min(torch.max(x_adv.detach(), x_sub - eps),
                                      x_sub + eps).clamp(0, 1)
                    with torch.no_grad():
                        robust[idx] = wrapped(x_adv).argmax(1) == y[idx]
                fractions[part] = float(robust.float().mean())
                if len(self.parts) > 1:
                    components[f"{self.name}/{part}"] = robust.clone()
            if len(self.parts) > 1 and "square" in self.parts:
                checks.check_square_sr(fractions, logger=logging.getLogger(LOGGER_NAME))
        for p in fresh:
            p.grad = None
        lines = [msg for _, msg in log.records]
        warnings = [msg for level, msg in log.records if level >= logging.WARNING]
        return AttackOutput(robust, components, log=lines, warnings=warnings,
                            model_calls=wrapped.calls, model_images=wrapped.images)

    def describe(self) -> dict[str, Any]:
        ok, version = autoattack_status()
        return {"name": self.name, "kind": "autoattack", "library": version,
                "version": "standard" if len(self.parts) > 1 else "custom (one part)",
                "norm": "Linf", "parts": list(self.parts), "iterations": self.steps,
                "restarts": 1, "square_queries": self.queries, "square_p_init": 0.8,
                "square_resc_schedule": False, "rho": 0.75,
                "target_classes": "min(9, classes - 1)", "seed": self.seed,
                "standard": self.standard}


def _factory(parts: tuple[str, ...]):
    def factory(aa_steps: int = STANDARD_STEPS, aa_queries: int = STANDARD_QUERIES,
                seed: int = 0) -> Attack:
        return OfficialAutoAttack(parts, aa_steps, aa_queries, seed)

    factory.options = ("aa_steps", "aa_queries", "seed")  # type: ignore[attr-defined]
    return factory


register_attack("autoattack")(_factory(COMPONENTS))
for _part in COMPONENTS:
    register_attack(_part)(_factory((_part,)))
