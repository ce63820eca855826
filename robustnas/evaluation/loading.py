"""Models and data for evaluation: checkpoints, ε lists, dataset resolution, descriptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from robustnas.config import parse_number
from robustnas.errors import CheckpointError, UsageError
from robustnas.io import load_checkpoint
from robustnas.space.complexity import count_parameters
from robustnas.space.models import (
    describe_architecture,
    genotype_name,
    model_from_payload,
    model_genotype,
)


@dataclass
class Candidate:
    """One model to evaluate, with where it came from and what it was trained on."""

    label: str
    model: nn.Module
    checkpoint: str | None = None
    dataset: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def parse_eps_list(text: str | float | list[Any] | tuple[Any, ...]) -> list[tuple[float, str]]:
    """Parse ``"1/255,2/255,8/255"`` (or numbers) into sorted unique ``(value, text)`` pairs.

    ε is in [0, 1] pixel units; a value above 1 is rejected with a hint (``8`` → ``8/255``).
    """
    items = text.split(",") if isinstance(text, str) else (
        list(text) if isinstance(text, (list, tuple)) else [text])
    out: dict[float, str] = {}
    for item in items:
        raw = str(item).strip()
        if not raw:
            continue
        value = parse_number(raw, "eps")
        if not value >= 0:
            raise UsageError(f"malformed ε {raw!r}: must be a non-negative number such as 8/255")
        if value > 1:
            raise UsageError(f"ε {raw!r} is larger than 1; ε is in [0, 1] pixel units "
                             f"(did you mean {raw}/255?)")
        out.setdefault(value, raw if "/" in raw else _pretty(value))
    if not out:
        raise UsageError("no ε given (e.g. --eps 8/255 or --eps 1/255,2/255,4/255,8/255)")
    return sorted(out.items())


def _pretty(value: float) -> str:
    """``8/255`` when ``value`` is a multiple of 1/255 (up to rounding), else the number.

    Decimals stay decimals (``0.1`` is shown as ``0.1``, not as the fraction ``1/10``).
    """
    k = value * 255
    if abs(k - round(k)) < 1e-6:
        return f"{round(k)}/255" if round(k) else "0"
    return f"{value:g}"


def load_candidate(path: str | Path, label: str | None = None) -> Candidate:
    """Load a checkpoint holding ``{"model": model_payload(...), ...}`` (weights only)."""
    ckpt = load_checkpoint(path)
    if "model" not in ckpt or not isinstance(ckpt["model"], dict):
        raise CheckpointError(f"checkpoint {path} has no 'model' entry (not a robustnas model "
                              "checkpoint)")
    model = model_from_payload(ckpt["model"], source=str(path))
    dataset = ckpt.get("dataset")
    if dataset is not None and not (isinstance(dataset, dict) and "name" in dataset):
        raise CheckpointError(f"checkpoint {path}: 'dataset' must be a dict with a 'name'")
    meta = {k: v for k, v in ckpt.items()
            if k in ("epoch", "objective", "genotype_path", "config") and _plain(v)}
    return Candidate(label or Path(path).stem, model, str(path), dataset, meta)


def _plain(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def unique_labels(labels: list[str], paths: list[str | None]) -> list[str]:
    """Disambiguate repeated labels with their parent directory name, then an index."""
    out = list(labels)
    for i, lab in enumerate(labels):
        if labels.count(lab) > 1 and paths[i]:
            out[i] = f"{Path(paths[i]).parent.name}/{lab}"
    for i, lab in enumerate(out):
        if out.count(lab) > 1:
            out[i] = f"{lab}#{i + 1}"
    return out


def architecture_name(model: nn.Module) -> str:
    """A short human-readable architecture: genotype name (a searched cell is told apart by
    a fingerprint and its search, see :func:`~robustnas.space.models.genotype_name`)
    and size."""
    model = getattr(model, "module", model)
    cfg = getattr(model, "config", None) or {}
    sizes = f" (C={cfg['C']}, {cfg['layers']} cells)" if {"C", "layers"} <= set(cfg) else ""
    genotype = model_genotype(model)
    if genotype is not None and sizes:  # a network of a cell space
        return f"{genotype_name(genotype)}{sizes}"
    if is_supernet_model(model):
        return f"supernet{sizes}"
    return describe_architecture(model)  # other spaces' networks, hand-crafted, ensembles


def is_supernet_model(model: nn.Module) -> bool:
    """Whether ``model`` is a supernet (it derives genotypes: ``genotype()`` is a method)."""
    return callable(getattr(getattr(model, "module", model), "genotype", None))


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Architecture, parameter count and, for a Network, its genotype (JSON form)."""
    inner = getattr(model, "module", model)
    info: dict[str, Any] = {"architecture": architecture_name(inner),
                            "params": int(count_parameters(inner))}
    genotype = model_genotype(inner)
    if genotype is not None:
        info["genotype"] = genotype.to_dict()
    return info


def model_input_spec(model: nn.Module) -> tuple[int | None, int | None]:
    """``(in_channels, num_classes)`` from the model's config when it has one."""
    cfg = getattr(getattr(model, "module", model), "config", None) or {}
    return cfg.get("in_channels"), cfg.get("num_classes")


def load_test_data(spec: dict[str, Any], cache: dict) -> Any:
    """Load (and cache) the dataset described by ``{"name", "root", "options"}``."""
    from robustnas.data import load_dataset

    options = dict(spec.get("options") or {})
    key = (spec["name"], str(spec.get("root")), tuple(sorted(options.items())))
    if key not in cache:
        cache[key] = load_dataset(spec["name"], spec.get("root"), **options)
    return cache[key]


def check_compatible(label: str, model: nn.Module, data: Any) -> None:
    """Raise a UsageError when the model cannot consume the dataset's images or labels."""
    channels, classes = model_input_spec(model)
    if channels is not None and channels != data.in_channels:
        raise UsageError(f"{label}: the model takes {channels}-channel images but dataset "
                         f"{data.name!r} has {data.in_channels} channels")
    if classes is not None and classes < data.num_classes:
        raise UsageError(f"{label}: the model has {classes} outputs but dataset "
                         f"{data.name!r} has {data.num_classes} classes")
