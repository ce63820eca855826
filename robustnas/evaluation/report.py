"""The evaluation report: JSON (machine-readable) and Markdown (one comparison table).

Accuracies are percentages over the evaluated test images. The JSON layout::

    {"format": "robustnas-evaluation", "version": 1, "created": ..., "settings": {...},
     "environment": {...},
     "models": [{"label", "checkpoint", "architecture", "params", "genotype"?, "dataset",
                 "classes", "n", "clean", "rows": [{"eps", "eps_text", "attacks": {name: acc},
                 "components"?: {"autoattack/apgd-ce": acc, ...}, "worst_case", "hrs"}],
                 "measures"?, "corruptions"?, "sanity": [...], "warnings": [...],
                 "seconds"}]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustnas.io import atomic_write_text

REPORT_FORMAT = "robustnas-evaluation"
REPORT_VERSION = 1


@dataclass
class Report:
    """Results of :func:`robustnas.evaluation.evaluate` for one or more models."""

    settings: dict[str, Any]
    models: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    @property
    def warnings(self) -> list[str]:
        """Every model's warnings, prefixed with its label."""
        return [f"{m['label']}: {w}" for m in self.models for w in m.get("warnings", [])]

    def model(self, label: str) -> dict[str, Any]:
        """The result record of the model called ``label``."""
        for m in self.models:
            if m["label"] == label:
                return m
        raise KeyError(label)

    def accuracy(self, label: str, attack: str, eps_text: str | None = None) -> float:
        """One figure: ``attack`` may be an attack name, ``"clean"`` or ``"worst_case"``."""
        m = self.model(label)
        if attack == "clean":
            return m["clean"]
        rows = m["rows"] if eps_text is None else [r for r in m["rows"]
                                                   if r["eps_text"] == eps_text]
        row = rows[-1]
        return row["worst_case"] if attack == "worst_case" else row["attacks"][attack]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {"format": REPORT_FORMAT, "version": REPORT_VERSION, "created": self.created,
                "settings": self.settings, "environment": self.environment,
                "models": self.models}

    def to_json(self) -> str:
        """Indented JSON text (no NaN/Infinity: non-finite numbers become null)."""
        return json.dumps(_finite(self.to_dict()), indent=2, ensure_ascii=False) + "\n"

    def _rows(self) -> tuple[list[str], list[list[str]]]:
        """Header and cells of the comparison table (one row per model and ε)."""
        attacks: list[str] = []
        for m in self.models:
            for r in m["rows"]:
                attacks += [a for a in r["attacks"] if a not in attacks]
        head = ["model", "architecture", "params (M)", "ε", "clean", *attacks, "worst case",
                "HRS"]
        rows = []
        for m in self.models:
            for r in m["rows"]:
                cells = [m["label"], str(m["architecture"]), f"{m['params'] / 1e6:.3f}",
                         r["eps_text"], f"{m['clean']:.2f}"]
                cells += [f"{r['attacks'][a]:.2f}" if a in r["attacks"] else "–"
                          for a in attacks]
                cells += [f"{r['worst_case']:.2f}", f"{r['hrs']:.2f}"]
                rows.append(cells)
        return head, rows

    def table(self) -> str:
        """The comparison table (Markdown): one row per model and ε."""
        head, rows = self._rows()
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for cells in rows:
            # "|" would end the cell (NAS-Bench-201 strings are full of them)
            cells[1] = cells[1].replace("|", "\\|")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def text_table(self) -> str:
        """The comparison table for a terminal: aligned columns, nothing escaped (Markdown's
        ``\\|`` would show as such around every NAS-Bench-201 cell string)."""
        head, rows = self._rows()
        widths = [max(len(r[j]) for r in [head, *rows]) for j in range(len(head))]
        numeric = range(2, len(head))  # numbers right-aligned, names left
        return "\n".join("  ".join(c.rjust(w) if j in numeric else c.ljust(w)
                                   for j, (c, w) in enumerate(zip(r, widths))).rstrip()
                         for r in [head, *rows])

    def summary_lines(self) -> list[str]:
        """One line per model for ``--measures`` and one for ``--corruptions`` (what the
        terminal shows of them; the full figures are in the JSON and Markdown files)."""
        lines = []
        for m in self.models:
            meas = m.get("measures")
            if meas:
                j, h = meas["jacobian_frobenius"], meas["hessian_max_eigenvalue"]
                lip = meas.get("lipschitz_log10")
                lip_text = "not finite" if lip is None else f"10^{lip:.1f}"
                lines.append(f"{m['label']}: measures on {meas['n']} images: Jacobian "
                             f"Frobenius norm {j['mean']:.4g} ± {j['std']:.3g}, input-Hessian "
                             f"top eigenvalue {h['mean']:.4g} ± {h['std']:.3g}, Lipschitz "
                             f"upper bound {lip_text} (loose)")
            cor = m.get("corruptions")
            if cor:
                by = cor["by_corruption"]
                worst = min(by, key=lambda k: by[k]["mean"]) if by else None
                worst_text = f"; lowest: {worst} {by[worst]['mean']:.2f}" if worst else ""
                lines.append(f"{m['label']}: corruptions ({len(by)} kinds × 5 severities): "
                             f"mean accuracy {cor['mean']:.2f}{worst_text}")
        return lines

    def to_markdown(self) -> str:
        """The full Markdown report: table, AutoAttack parts, measures, corruptions, checks."""
        s = self.settings
        out = ["# Robustness evaluation", "",
               f"Dataset split: test; images per model: {s.get('n_text', s.get('n'))}; "
               f"attacks: {', '.join(s.get('attacks', []))}; L∞ ε: "
               f"{', '.join(s.get('eps', []))}; accuracies in %. "
               "Worst case = correct clean and under every attack run (robust accuracy); "
               "HRS = 2·clean·worst/(clean + worst).", "", self.table(), ""]
        for m in self.models:
            out += _model_section(m)
        warnings = self.warnings
        out += ["## Warnings", ""]
        out += [f"- {w}" for w in warnings] if warnings else ["None."]
        return "\n".join(out) + "\n"

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``path`` (JSON) and the Markdown next to it (``.md``), both atomically."""
        path = Path(path)
        md = path.with_suffix(".md") if path.suffix.lower() != ".md" else \
            path.with_name(path.stem + ".report.md")
        atomic_write_text(path, self.to_json())
        atomic_write_text(md, self.to_markdown())
        return path, md

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Rebuild a report from :meth:`to_dict` output."""
        return cls(settings=data.get("settings", {}), models=list(data.get("models", [])),
                   environment=data.get("environment", {}), created=data.get("created", ""))


def _model_section(m: dict[str, Any]) -> list[str]:
    out = [f"## {m['label']}", "",
           f"- architecture: {m['architecture']}, {m['params']:,} parameters",
           f"- checkpoint: {m.get('checkpoint') or '(in memory)'}",
           f"- dataset: {m['dataset']} (test, {m['n']} images); evaluated in {m['seconds']:.1f} s"]
    for r in m["rows"]:
        if r.get("components"):
            parts = ", ".join(f"{k.split('/', 1)[1]} {v:.2f}" for k, v in r["components"].items())
            out.append(f"- AutoAttack at ε={r['eps_text']}, accuracy after each part: {parts}")
    for run in m.get("autoattack", []):
        out.append(f"- {run['attack']} at ε={run['eps_text']} (pyautoattack): "
                   f"{run['model_images']:,} images through the model in "
                   f"{run['model_calls']:,} calls; its checks: "
                   + ("; ".join(run["warnings"]) if run["warnings"] else "no flag raised"))
    meas = m.get("measures")
    if meas:
        j, h = meas["jacobian_frobenius"], meas["hessian_max_eigenvalue"]
        out.append(f"- measures on {meas['n']} images: Jacobian Frobenius norm "
                   f"{j['mean']:.4g} ± {j['std']:.3g}; input-Hessian top eigenvalue "
                   f"{h['mean']:.4g} ± {h['std']:.3g}")
        out.append(f"- {lipschitz_sentence(meas.get('lipschitz_log10'))}")
    cor = m.get("corruptions")
    if cor:
        out += ["", f"Corruptions ({cor['source']}); mean accuracy {cor['mean']:.2f}", "",
                "| corruption | 1 | 2 | 3 | 4 | 5 | mean |", "|---|---|---|---|---|---|---|"]
        for name, accs in cor["by_corruption"].items():
            cells = [f"{accs[str(s)]:.2f}" for s in range(1, 6)] + [f"{accs['mean']:.2f}"]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    checks = m.get("sanity") or []
    if checks:
        out += ["", "Gradient-masking checks:", ""]
        out += [f"- [{'ok' if c['passed'] else 'FAILED'}] {c['check']}: {c['detail']}"
                for c in checks]
    out.append("")
    return out


def lipschitz_sentence(log10: float | None) -> str:
    """The Lipschitz bound on a log10 scale, with what it means and what it does not."""
    if log10 is None:
        value = "not finite (a layer's norm overflowed)"
    else:
        value = f"10^{log10:.1f} (log10 = {log10:.2f})"
    return ("Lipschitz upper bound (L2, logits w.r.t. input): " + value + ". It is the product "
            "of per-layer operator norms, a certified but very loose bound: no input change of "
            "L2 size r moves the logits by more than bound × r. It is not an estimate of the "
            "model's actual sensitivity (see the Jacobian norm for that), grows "
            "exponentially with depth, and is only comparable between models of the same "
            "depth and layout.")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
