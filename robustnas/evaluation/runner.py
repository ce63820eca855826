"""Evaluate one model: attacks over an ε list, sanity checks, measures and corruptions.

All figures are percentages over the first ``n`` test images. Per ε, ``worst_case`` is the
fraction of images classified correctly clean *and* under every attack that was run (the
number reported as robust accuracy); each attack's own accuracy is kept as well.
Random starts use a generator seeded from (seed, attack, ε), so a figure does not depend
on which other attacks were run or in which order.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustnas.attacks import Attack, make_attack
from robustnas.attacks.standard import PGD, Clean
from robustnas.errors import UsageError
from robustnas.evaluation import sanity
from robustnas.evaluation.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    corrupt,
    corruption_files,
    load_corruption_file,
)
from robustnas.evaluation.lipschitz import lipschitz_upper_bound
from robustnas.evaluation.measures import (
    harmonic_robustness_score,
    hessian_top_eigenvalue,
    jacobian_frobenius,
)

#: ``tick(images, stage)``: ``images`` more images went through one attack (or measure)
Tick = Callable[[int, str], None]


def seeded(seed: int, *parts: Any, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded from ``seed`` and ``parts`` (stable across runs)."""
    key = zlib.crc32(":".join(str(p) for p in (seed, *parts)).encode())
    return torch.Generator(device=device).manual_seed(key)


class ModelEvaluator:
    """Runs everything for one model on one test subset ``(x uint8, y)``."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 device: torch.device, batch_size: int, seed: int, tick: Tick) -> None:
        self.model = model
        self.x, self.y = x, y
        self.device = device
        self.batch_size = batch_size
        self.seed = seed
        self.tick = tick
        #: ``"<attack>@<ε>"`` → log, warnings and model calls of library attacks (AutoAttack)
        self.library: dict[str, dict[str, Any]] = {}

    def batches(self, x: torch.Tensor, y: torch.Tensor):
        """Float [0, 1] batches on the device."""
        for i in range(0, len(y), self.batch_size):
            xb = x[i:i + self.batch_size].to(self.device).float() / 255.0
            yield xb, y[i:i + self.batch_size].to(self.device)

    def run_attack(self, attack: Attack, eps: float, eps_text: str, x: torch.Tensor | None = None,
                   y: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-sample correctness (bool, CPU) and composite parts, over ``(x, y)``.

        The progress callback advances by the number of images attacked.
        """
        x = self.x if x is None else x
        y = self.y if y is None else y
        gen = seeded(self.seed, attack.name, eps_text, device=self.device)
        correct, parts = [], {}
        extra: dict[str, Any] = {"log": [], "warnings": [], "model_calls": 0,
                                 "model_images": 0}
        for xb, yb in self.batches(x, y):
            out = attack.run(self.model, xb, yb, eps, gen)
            correct.append(out.correct.cpu())
            for k, v in out.components.items():
                parts.setdefault(k, []).append(v.cpu())
            extra["log"] += out.log
            extra["warnings"] += [w for w in out.warnings if w not in extra["warnings"]]
            extra["model_calls"] += out.model_calls
            extra["model_images"] += out.model_images
            self.tick(len(yb), f"{attack.name} ε={eps_text}")
        if extra["log"] or extra["model_calls"]:
            self.library[f"{attack.name}@{eps_text}"] = {"attack": attack.name,
                                                         "eps_text": eps_text, "n": len(y),
                                                         **extra}
        return torch.cat(correct), {k: torch.cat(v) for k, v in parts.items()}

    # -- attacks -----------------------------------------------------------------------
    def attacks(self, attacks: list[Attack], eps_list: list[tuple[float, str]]
                ) -> tuple[float, list[dict[str, Any]], dict[str, torch.Tensor]]:
        """Clean accuracy, one row per ε, and the per-sample correctness (for sanity)."""
        clean, _ = self.run_attack(Clean(), 0.0, "0")
        per_sample: dict[str, torch.Tensor] = {"clean": clean}
        clean_acc = pct(clean)
        rows = []
        for eps, text in eps_list:
            accs: dict[str, float] = {}
            components: dict[str, float] = {}
            worst = clean.clone()
            for attack in attacks:
                if isinstance(attack, Clean):
                    continue
                correct, parts = self.run_attack(attack, eps, text)
                per_sample[f"{attack.name}@{text}"] = correct
                accs[attack.name] = pct(correct)
                components.update({k: pct(v) for k, v in parts.items()})
                worst &= correct
            row = {"eps": eps, "eps_text": text, "attacks": accs, "worst_case": pct(worst),
                   "hrs": harmonic_robustness_score(clean_acc, pct(worst))}
            if components:
                row["components"] = components
            rows.append(row)
        return clean_acc, rows, per_sample

    # -- gradient-masking checks -------------------------------------------------------
    def sanity(self, attacks: list[Attack], rows: list[dict[str, Any]],
               per_sample: dict[str, torch.Tensor], sanity_n: int, large_eps: float,
               restarts: int) -> list[dict[str, Any]]:
        """Run the extra PGD attacks on a subset and compare (see :mod:`sanity`)."""
        n = len(self.y)
        checks = sanity.eps_monotone(rows, n) + sanity.fgsm_vs_pgd(rows, n) \
            + sanity.blackbox_vs_whitebox(rows, n)
        pgds = [a for a in attacks if isinstance(a, PGD) and a.loss == "ce"]
        base = pgds[0] if pgds else make_attack("pgd20", restarts=restarts)
        m = min(sanity_n, n)
        xs, ys = self.x[:m], self.y[:m]
        big, _ = self.run_attack(base, large_eps, f"{large_eps:g}", xs, ys)
        checks.append(sanity.large_eps(pct(big), f"{large_eps:g}", base.name, m))
        eps, text = rows[-1]["eps"], rows[-1]["eps_text"]
        key = f"{base.name}@{text}"
        if key in per_sample:
            base_correct = per_sample[key][:m]
        else:
            base_correct, _ = self.run_attack(base, eps, text, xs, ys)
        more = PGD(base.steps * 5, "ce", base.restarts, base.step_size, base.random_start)
        more_correct, _ = self.run_attack(more, eps, text, xs, ys)
        checks.append(sanity.more_steps(pct(base_correct), pct(more_correct), base.name,
                                        more.name, text, m))
        return checks

    # -- measures ----------------------------------------------------------------------
    def measures(self, measure_n: int, hessian_iters: int) -> dict[str, Any]:
        """Mean/std of the Jacobian norm and Hessian eigenvalue, and the Lipschitz bound."""
        m = min(measure_n, len(self.y))
        jac, eig = [], []
        gen = seeded(self.seed, "measures", device=self.device)
        for xb, yb in self.batches(self.x[:m], self.y[:m]):
            jac.append(jacobian_frobenius(self.model, xb).cpu())
            eig.append(hessian_top_eigenvalue(self.model, xb, yb, iters=hessian_iters,
                                              generator=gen).cpu())
            self.tick(len(yb), "measures")
        jac_t, eig_t = torch.cat(jac), torch.cat(eig)
        start = time.perf_counter()
        note = None
        try:
            bound = lipschitz_upper_bound(self.model, tuple(self.x.shape[1:]))
        except UsageError as exc:  # no bound for this architecture (hand-crafted, ensembles)
            bound, note = math.nan, str(exc)
        return {
            "n": m,
            "jacobian_frobenius": {"mean": float(jac_t.mean()), "std": _std(jac_t),
                                   "output": "logits", "method": "exact"},
            "hessian_max_eigenvalue": {"mean": float(eig_t.mean()), "std": _std(eig_t),
                                       "loss": "cross-entropy", "iterations": hessian_iters},
            "lipschitz_upper_bound": bound if math.isfinite(bound) else None,
            "lipschitz_log10": math.log10(bound) if 0 < bound < math.inf else None,
            "lipschitz_seconds": round(time.perf_counter() - start, 3),
            **({"lipschitz_note": note} if note else {}),
        }

    # -- corruptions -------------------------------------------------------------------
    def corruptions(self, directory: Path | None) -> dict[str, Any]:
        """Accuracy per corruption and severity, from files in ``directory`` or generated."""
        clean_model = Clean()
        by: dict[str, dict[str, float]] = {}
        if directory is not None:
            names = corruption_files(directory)
            source = f"files: {directory}"
        else:
            names = list(CORRUPTIONS)
            source = "generated (see robustnas.evaluation.corruptions)"
        for name in names:
            by[name] = {}
            for sev in SEVERITIES:
                if directory is not None:
                    xc, yc = load_corruption_file(directory, name, sev, len(self.y))
                    if xc.shape[1:] != self.x.shape[1:]:
                        from robustnas.errors import DataError
                        raise DataError(f"{directory}/{name}.npy holds {tuple(xc.shape[1:])} "
                                        f"images but the test set has {tuple(self.x.shape[1:])}")
                else:
                    gen = seeded(self.seed, "corruption", name, sev, device=torch.device("cpu"))
                    xc = (corrupt(self.x.float() / 255.0, name, sev, gen) * 255).round()
                    xc, yc = xc.to(torch.uint8), self.y
                correct, _ = self.run_attack(clean_model, 0.0, "0", xc, yc)
                by[name][str(sev)] = pct(correct)
            by[name]["mean"] = sum(by[name][str(s)] for s in SEVERITIES) / len(SEVERITIES)
        mean = sum(v["mean"] for v in by.values()) / len(by)
        return {"source": source, "mean": mean, "by_corruption": by}


def pct(correct: torch.Tensor) -> float:
    """Percentage of True entries (0 for an empty tensor)."""
    return 100.0 * float(correct.float().mean()) if correct.numel() else 0.0


def _std(t: torch.Tensor) -> float:
    return float(t.std()) if t.numel() > 1 else 0.0
