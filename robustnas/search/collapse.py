"""A guard against DARTS collapse: too many skip connections, or a sharpening α-landscape.

Two independent rules, each off unless its threshold is given:

* **Skip connections** (as in DARTS+ / P-DARTS): the derived *normal* cell uses more than
  ``max_skips`` ``skip_connect`` edges. Collapsed DARTS searches end with parameter-free
  normal cells; the reduction cell is not counted because skips there are common and
  harmless.
* **Dominant eigenvalue** (RobustDARTS, Zela et al., ICLR 2020, "DARTS-ES"): let λ(i) be
  the dominant eigenvalue of the Hessian of the validation loss with respect to α,
  measured at the end of epoch i, and λ̄(i) its mean over the measurements in the window
  of the last ``window`` (k) epochs, (i − k, i]. RobustDARTS stops when
  λ̄(i − k) / λ̄(i) < T (T = 0.75, k = 5) and returns the architecture of epoch i − k.
  Here the threshold is stated the other way up, as growth: the rule fires when
  λ̄(i) / λ̄(i − k) > ``eigen_ratio`` (RobustDARTS' T = 0.75 is ``eigen_ratio = 1/0.75 ≈
  1.33``). With ``average=False`` the single measurements at epochs i and ≤ i − k are
  compared instead of window means. The rule waits until the older window lies within
  the search (epoch i ≥ 2k − 1; i ≥ k without averaging), both windows hold at least one
  measurement and the older mean is positive.

``action`` says what a fired rule means: ``"warn"`` (a message, the search goes on) or
``"stop"`` (the search should stop). The decision carries the genotype recorded at epoch
i − k (when the guard saw it) so a caller can return the pre-collapse architecture, as
RobustDARTS does. Epochs are 0-based, as the search loop counts them. The history is kept
in :meth:`CollapseGuard.state_dict` (plain numbers and dicts) so a resumed search decides
exactly as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustnas.errors import UsageError


@dataclass(frozen=True)
class CollapseDecision:
    """What the guard concluded at one epoch.

    ``message`` is None when no rule fired. ``stop`` is True only when a rule fired and the
    action is ``"stop"``. ``reasons`` names the rules that fired (``"skips"``,
    ``"eigenvalue"``). ``fallback_epoch``/``fallback_genotype`` (a genotype dict) point to
    the architecture k epochs earlier when the eigenvalue rule fired and it was recorded.
    """

    stop: bool = False
    message: str | None = None
    reasons: tuple[str, ...] = ()
    eigen_ratio: float | None = None
    fallback_epoch: int | None = None
    fallback_genotype: dict[str, Any] | None = None


class CollapseGuard:
    """Checks each epoch's genotype and α-Hessian eigenvalue against collapse thresholds."""

    def __init__(self, max_skips: int | None = None, eigen_ratio: float | None = None,
                 action: str = "warn", window: int = 5, average: bool = True) -> None:
        if action not in ("warn", "stop"):
            raise UsageError(f"collapse action must be warn or stop, got {action!r}")
        if max_skips is not None and max_skips < 0:
            raise UsageError(f"collapse max_skips must be >= 0, got {max_skips}")
        if eigen_ratio is not None and not eigen_ratio > 0:
            raise UsageError(f"collapse eigen_ratio must be positive, got {eigen_ratio}")
        if window < 1:
            raise UsageError(f"collapse window must be at least 1 epoch, got {window}")
        self.max_skips = max_skips
        self.eigen_ratio = eigen_ratio
        self.action = action
        self.window = window
        self.average = average
        self._eigen: dict[int, float] = {}
        self._genotypes: dict[int, dict[str, Any]] = {}

    # -- rules ---------------------------------------------------------------------------
    def _ratio(self, epoch: int) -> float | None:
        k = self.window
        if epoch - (2 * k if self.average else k) + 1 < 0:
            return None  # the older window does not lie within the search yet
        if self.average:
            now = [v for e, v in self._eigen.items() if epoch - k < e <= epoch]
            past = [v for e, v in self._eigen.items() if epoch - 2 * k < e <= epoch - k]
        else:
            now = [self._eigen[epoch]] if epoch in self._eigen else []
            older = [e for e in self._eigen if e <= epoch - k]
            past = [self._eigen[max(older)]] if older else []
        if not now or not past:
            return None
        past_mean = sum(past) / len(past)
        if past_mean <= 0:
            return None
        return (sum(now) / len(now)) / past_mean

    def check(self, genotype: Any, eigenvalue: float | None, epoch: int) -> CollapseDecision:
        """Record this epoch and decide. ``eigenvalue`` is None in epochs without a measurement."""
        self._genotypes[epoch] = genotype.to_dict()
        if eigenvalue is not None:
            self._eigen[epoch] = float(eigenvalue)
        self._forget(epoch)
        reasons: list[str] = []
        parts: list[str] = []
        skips = genotype.count("skip_connect")  # in the space's main cell (DARTS: normal)
        if self.max_skips is not None and skips > self.max_skips:
            reasons.append("skips")
            parts.append(f"normal cell has {skips} skip connections (limit {self.max_skips})")
        ratio = None
        fallback_epoch = fallback = None
        if self.eigen_ratio is not None and eigenvalue is not None:
            ratio = self._ratio(epoch)
            if ratio is not None and ratio > self.eigen_ratio:
                reasons.append("eigenvalue")
                kind = "mean " if self.average else ""
                parts.append(f"{kind}dominant α-Hessian eigenvalue grew {ratio:.2f}x over "
                             f"{self.window} epochs (limit {self.eigen_ratio:g})")
                earlier = [e for e in self._genotypes if e <= epoch - self.window]
                if earlier:
                    fallback_epoch = max(earlier)
                    fallback = self._genotypes[fallback_epoch]
        if not reasons:
            return CollapseDecision(eigen_ratio=ratio)
        stop = self.action == "stop"
        message = f"epoch {epoch + 1}: " + "; ".join(parts)
        if stop:
            message += " - stopping"
            if fallback_epoch is not None:
                message += f" (architecture of epoch {fallback_epoch + 1} is the fallback)"
        return CollapseDecision(stop=stop, message=message, reasons=tuple(reasons),
                                eigen_ratio=ratio, fallback_epoch=fallback_epoch,
                                fallback_genotype=fallback)

    def _forget(self, epoch: int) -> None:
        # Only the last 2k epochs can matter (the latest older one, without averaging).
        horizon = epoch - 2 * self.window
        if self.average:
            self._eigen = {e: v for e, v in self._eigen.items() if e > horizon}
        else:
            keep = max((e for e in self._eigen if e <= epoch - self.window), default=None)
            self._eigen = {e: v for e, v in self._eigen.items()
                           if e > epoch - self.window or e == keep}
        self._genotypes = {e: g for e, g in self._genotypes.items() if e > horizon}

    # -- resume --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The recorded history as plain lists."""
        return {"eigen": [[e, v] for e, v in sorted(self._eigen.items())],
                "genotypes": [[e, g] for e, g in sorted(self._genotypes.items())]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._eigen = {int(e): float(v) for e, v in state.get("eigen", [])}
        self._genotypes = {int(e): dict(g) for e, g in state.get("genotypes", [])}
