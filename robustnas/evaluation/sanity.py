"""Checks that catch gradient masking (Athalye et al., 2018; Carlini et al., 2019).

Each check compares accuracies (percentages) and yields a record
``{"check", "passed", "detail"}``; failed ones become warnings in the report:

* ``eps_monotone``: accuracy under each attack (and the worst case) must not rise with ε.
* ``large_eps``: PGD at a large ε (default 0.5, where any image can be turned into any
  other up to ±0.5 per pixel) must drive accuracy to (near) zero.
* ``more_steps``: PGD with 5× the steps must not be weaker than the PGD that was run.
* ``fgsm_vs_pgd``: iterative PGD must not be weaker than single-step FGSM.
* ``blackbox_vs_whitebox``: the gradient-free Square attack must not beat white-box PGD.
* ``autoattack_checks``: pyautoattack's own checks (randomised output, logits
  that look like probabilities, dynamic defence, zero gradients, Square beating the white-box
  parts); each warning it logged becomes a failed record.

Tolerance: ``max(1, 200/n)`` percentage points (1 point, or two samples on small sets).
The compared attacks start from different random points (PGD-20 and PGD-100 use different
seeded starts, and each returns its last iterate), so the weaker-looking one can come out a
sample or two ahead by chance; a difference within the tolerance is not a warning. Every
record states the tolerance it used.
"""

from __future__ import annotations

from typing import Any


def tolerance(n: int) -> float:
    """Allowed excess in percentage points for ``n`` samples."""
    return max(1.0, 200.0 / max(n, 1))


def _record(check: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"check": check, "passed": bool(passed), "detail": detail}


def eps_monotone(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Accuracy of each attack (and the worst case) is non-increasing in ε (within tolerance)."""
    if len(rows) < 2:
        return []
    tol = tolerance(n)
    out = []
    names = list(rows[0]["attacks"]) + ["worst_case"]
    for name in names:
        if name == "clean":
            continue
        seq = [(r["eps_text"], r["worst_case"] if name == "worst_case" else r["attacks"][name])
               for r in rows]
        bad = [(a, b) for a, b in zip(seq, seq[1:]) if b[1] > a[1] + tol]
        if bad:
            (e1, a1), (e2, a2) = bad[0]
            detail = (f"{name}: accuracy rises from {a1:.2f}% at ε={e1} to {a2:.2f}% at "
                      f"ε={e2} (tolerance {tol:.1f} points): possible gradient masking")
        else:
            detail = f"{name}: non-increasing over ε = {', '.join(e for e, _ in seq)}"
        out.append(_record("eps_monotone", not bad, detail))
    return out


def large_eps(acc: float, eps_text: str, attack: str, n: int) -> dict[str, Any]:
    """PGD at a large ε should leave (near) zero accuracy."""
    tol = tolerance(n)
    ok = acc <= tol
    detail = (f"{attack} at ε={eps_text}: {acc:.2f}% on {n} samples"
              + ("" if ok else f" (expected ≤ {tol:.1f}%): the attack cannot reach points a "
                               "large perturbation certainly reaches; gradients may be masked"))
    return _record("large_eps", ok, detail)


def more_steps(base: float, more: float, base_name: str, more_name: str, eps_text: str,
               n: int) -> dict[str, Any]:
    """More PGD steps must not raise accuracy."""
    tol = tolerance(n)
    ok = more <= base + tol
    detail = (f"ε={eps_text}, {n} samples: {base_name} {base:.2f}%, {more_name} {more:.2f}%"
              + (f" (passes when {more_name} is at most {tol:.1f} points above {base_name}: "
                 "the two runs use different random starts)" if ok else
                 f" (more steps raised accuracy by more than {tol:.1f} points: "
                 "the attack is not converging; possible gradient masking)"))
    return _record("more_steps", ok, detail)


def fgsm_vs_pgd(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Iterative PGD (cross-entropy) must not be weaker than FGSM at any ε."""
    tol = tolerance(n)
    out = []
    for r in rows:
        attacks = r["attacks"]
        if "fgsm" not in attacks:
            continue
        for name, acc in attacks.items():
            if not name.startswith("pgd"):
                continue
            ok = acc <= attacks["fgsm"] + tol
            detail = (f"ε={r['eps_text']}: fgsm {attacks['fgsm']:.2f}%, {name} {acc:.2f}%"
                      + ("" if ok else " (single-step FGSM is stronger than iterative PGD: a "
                                       "classic sign of gradient masking)"))
            out.append(_record("fgsm_vs_pgd", ok, detail))
    return out


def blackbox_vs_whitebox(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The black-box Square attack must not be stronger than white-box PGD."""
    tol = tolerance(n)
    out = []
    for r in rows:
        attacks = r["attacks"]
        if "square" not in attacks:
            continue
        for name, acc in attacks.items():
            if not (name.startswith("pgd") or name.startswith("cw")):
                continue
            ok = attacks["square"] >= acc - tol
            detail = (f"ε={r['eps_text']}: square {attacks['square']:.2f}%, {name} {acc:.2f}%"
                      + ("" if ok else " (a gradient-free attack beats a gradient attack: "
                                       "gradients are likely masked or obfuscated)"))
            out.append(_record("blackbox_vs_whitebox", ok, detail))
    return out


def autoattack_checks(library: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Records from pyautoattack's checks: one per distinct warning it logged,
    or one passed record per AutoAttack run when it logged none."""
    out = []
    for key, info in library.items():
        if not info.get("log"):
            continue
        if info["warnings"]:
            out += [_record("autoattack_checks", False, f"{key}: AutoAttack check: {w}")
                    for w in info["warnings"]]
        else:
            out.append(_record("autoattack_checks", True,
                               f"{key}: pyautoattack's checks (randomised output, "
                               "probabilities instead of logits, dynamic defence, zero "
                               "gradients, Square vs white-box, target classes) raised no flag"))
    return out
