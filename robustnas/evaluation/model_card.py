"""A RobustBench-style model card for one evaluated model (``--model-card card.json``).

The top-level fields are those of a RobustBench model entry (``model_info/<dataset>/<threat
model>/<Name>.json``): ``name``, ``link``, ``authors``, ``venue``, ``additional_data``,
``number_forward_passes``, ``dataset``, ``architecture``, ``eps``, ``clean_acc``,
``reported``, ``autoattack_acc`` (accuracies as strings with two decimals, as RobustBench
writes them), plus ``threat_model``. ``link``, ``authors``, ``venue`` and ``reported`` are
left ``null`` for the submitter to fill in.

robustnas adds ``params``, ``genotype``, ``evaluation`` (settings: images, seed, batch size,
the AutoAttack library and its settings, whether the run is the standard one on the complete
test set), ``robustnas`` (version, checkpoint) and the AutoAttack log with the warnings of
its checks. A card is only a RobustBench-comparable figure when ``evaluation.standard`` and
``evaluation.complete_test_set`` are both true; otherwise ``footnote`` says why not.
``number_forward_passes`` is the model's ``forward_passes`` attribute when it has one (a
model that needs several stochastic passes per prediction), else 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robustnas.errors import UsageError
from robustnas.evaluation.report import Report
from robustnas.io import atomic_write_text

CARD_FORMAT = "robustnas-model-card"
CARD_VERSION = 1
THREAT_MODEL = "Linf"


def check_card_request(attacks: list[str], eps: list[str], models: int) -> None:
    """Refuse, before any work, evaluations that cannot give a card (one clear line)."""
    if "autoattack" not in attacks:
        raise UsageError("--model-card needs the AutoAttack figure: add autoattack to --attacks "
                         "(e.g. --attacks clean,pgd20,autoattack)")
    if len(eps) != 1:
        raise UsageError(f"--model-card describes one ε; got {len(eps)} ({', '.join(eps)})")
    if models != 1:
        raise UsageError(f"--model-card describes one model; got {models} checkpoints")


def model_card(report: Report, label: str | None = None, *, name: str | None = None,
               test_size: int | None = None) -> dict[str, Any]:
    """The card of the model ``label`` (the only model when ``None``) of ``report``.

    ``test_size`` (default: the one the report recorded) is the size of the dataset's test
    split, to say whether the complete test set was used; ``name`` overrides the model's
    label as the card's ``name``.
    """
    if label is None:
        if len(report.models) != 1:
            raise UsageError(f"the report holds {len(report.models)} models; name one")
        m = report.models[0]
    else:
        m = report.model(label)
    rows = [r for r in m["rows"] if "autoattack" in r["attacks"]]
    if not rows:
        raise UsageError(f"{m['label']}: no AutoAttack figure in the report (run autoattack)")
    row = rows[-1]
    settings = report.settings
    aa = next((a for a in settings.get("attack_settings", []) if a.get("name") == "autoattack"),
              {})
    runs = [r for r in m.get("autoattack", []) if r["attack"] == "autoattack"
            and r["eps_text"] == row["eps_text"]]
    log = runs[0]["log"] if runs else []
    warnings = runs[0]["warnings"] if runs else []
    test_size = test_size if test_size is not None else m.get("test_size")
    complete = test_size is not None and m["n"] >= test_size
    standard = bool(aa.get("standard"))
    notes = []
    if not standard:
        notes.append(f"non-standard AutoAttack ({aa.get('iterations')} iterations, "
                     f"{aa.get('square_queries')} Square queries)")
    if not complete:
        notes.append(f"evaluated on the first {m['n']} test images"
                     + (f" of {test_size}" if test_size else ""))
    if warnings:
        notes.append("AutoAttack's checks raised warnings (see autoattack_warnings)")
    env = report.environment
    return {
        "format": CARD_FORMAT, "version": CARD_VERSION,
        "name": name or m["label"], "link": None, "authors": None, "venue": None,
        "additional_data": False,
        "number_forward_passes": int(m.get("forward_passes", 1)),
        "dataset": m["dataset"], "threat_model": THREAT_MODEL,
        "architecture": m["architecture"], "params": m["params"],
        "eps": row["eps_text"],
        "clean_acc": f"{m['clean']:.2f}", "reported": None,
        "autoattack_acc": f"{row['attacks']['autoattack']:.2f}",
        "footnote": "; ".join(notes) or None,
        "genotype": m.get("genotype"),
        "evaluation": {
            "split": "test", "n_examples": m["n"], "test_set_size": test_size,
            "complete_test_set": complete, "standard": standard and complete,
            "autoattack": aa, "autoattack_parts_acc": {
                k.split("/", 1)[1]: f"{v:.2f}" for k, v in row.get("components", {}).items()},
            "worst_case_acc": f"{row['worst_case']:.2f}",
            "attacks": {k: f"{v:.2f}" for k, v in row["attacks"].items()},
            "seed": settings.get("seed"), "batch_size": settings.get("batch_size"),
            "created": report.created, "device": env.get("device"),
            "device_name": env.get("device_name"), "torch": env.get("torch"),
            "autoattack_model_images": runs[0]["model_images"] if runs else None,
        },
        "robustnas": {"version": env.get("robustnas"), "checkpoint": m.get("checkpoint"),
                      "additional_data_note": "robustnas trains on the dataset's training "
                                              "split only"},
        "autoattack_warnings": warnings,
        "autoattack_log": log,
    }


def write_model_card(report: Report, path: str | Path, label: str | None = None, *,
                     name: str | None = None, test_size: int | None = None) -> Path:
    """Write :func:`model_card` as indented JSON (atomically); returns the path."""
    path = Path(path)
    card = model_card(report, label, name=name, test_size=test_size)
    atomic_write_text(path, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return path
