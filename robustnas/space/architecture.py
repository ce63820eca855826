"""One place that turns an architecture name into a model: genotypes (named or JSON files),
hand-crafted baselines (``resnet18``, ``wrn-28-10@0.5`` ...) and ensembles of either.

Used by ``retrain``, ``info``, checkpoint loading and studies, so that a hand-crafted name
or an ensemble works wherever a genotype name does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from robustnas.errors import CheckpointError, UsageError
from robustnas.space.genotype import Genotype, load_genotype
from robustnas.space.handcrafted import HandcraftedNet, build_handcrafted, is_handcrafted
from robustnas.space.network import Network


def is_handcrafted_spec(spec: str | Path) -> bool:
    """True for a hand-crafted name (``resnet18@0.25``) that is not an existing file."""
    return not Path(str(spec)).exists() and is_handcrafted(str(spec))


def build_architecture(spec: str | Path | Genotype, *, num_classes: int = 10,
                       in_channels: int = 3, mean: Sequence[float] | None = None,
                       std: Sequence[float] | None = None, C: int = 36, layers: int = 20,
                       auxiliary: bool = False) -> nn.Module:
    """The network named by ``spec``: a :class:`Genotype`, a genotype JSON file or name
    (built as a DARTS :class:`Network` with ``C``, ``layers``, ``auxiliary``), or a
    hand-crafted name (``C``, ``layers`` and ``auxiliary`` do not apply)."""
    if not isinstance(spec, Genotype) and is_handcrafted_spec(spec):
        return build_handcrafted(str(spec), num_classes=num_classes, in_channels=in_channels,
                                 mean=mean, std=std)
    genotype = spec if isinstance(spec, Genotype) else _load_any(spec)
    if getattr(genotype, "space", "darts") != "darts":  # e.g. a NAS-Bench-201 cell
        from robustnas.space.spaces import space_of_genotype

        return space_of_genotype(genotype).network(
            genotype, C=C, layers=layers, num_classes=num_classes, in_channels=in_channels,
            mean=mean, std=std)
    return Network(genotype, C=C, num_classes=num_classes, layers=layers, auxiliary=auxiliary,
                   in_channels=in_channels, mean=mean, std=std)


def _load_any(spec: str | Path) -> Any:
    """A genotype of any registered search space (DARTS names and files, NB201 strings)."""
    try:
        from robustnas.space.spaces import load_any_genotype
    except ImportError:  # only the DARTS space
        return load_genotype(spec)
    return load_any_genotype(spec)


def parse_member_list(specs: str | Sequence[str]) -> list[str]:
    """``"A,B,C"`` or ``["A", "B"]`` -> member specs; ``"3xDARTS_V2"`` / ``"DARTS_V2*3"``
    repeat one member."""
    items = specs.split(",") if isinstance(specs, str) else [str(s) for s in specs]
    out: list[str] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        count, name = 1, item
        head, sep, tail = item.partition("x")
        if sep and head.isdigit() and tail:
            count, name = int(head), tail
        elif "*" in item:
            name, _, times = item.rpartition("*")
            if not times.strip().isdigit():
                raise UsageError(f"ensemble member {item!r}: expected NAME*K with an integer K")
            count = int(times)
        if count < 1:
            raise UsageError(f"ensemble member {item!r}: the repeat count must be at least 1")
        out.extend([name.strip()] * count)
    if len(out) < 2:
        raise UsageError(f"an ensemble needs at least 2 members, got {len(out)} "
                         f"({specs!r}); e.g. --ensemble DARTS_V2,DARTS_V2,DARTS_V2")
    return out


def build_ensemble(specs: str | Sequence[str], combine: str = "features",
                   inits: str | Sequence[str] | None = None, **kwargs: Any) -> nn.Module:
    """A joint :class:`~robustnas.space.ensemble.Ensemble` of the members ``specs``
    (``"A,B,C"`` or a list; repeats are independent copies with different initialisations).
    ``inits``: ``"default"``, ``"seed000"`` or a comma list of schemes (see
    :func:`robustnas.space.ensemble.resolve_inits`); ``kwargs`` go to
    :func:`build_architecture` (members never get an auxiliary head)."""
    from robustnas.space.ensemble import Ensemble, resolve_inits

    names = parse_member_list(specs)
    kwargs = {**kwargs, "auxiliary": False}
    members = [build_architecture(name, **kwargs) for name in names]
    return Ensemble(members, combine=combine, num_classes=kwargs.get("num_classes", 10),
                    inits=resolve_inits(inits, len(members)))


def genotype_name(genotype: Genotype) -> str:
    """A short name that tells genotypes apart: its recorded name (``DARTS_V2``,
    ``RANDOM_0_3``), a built-in genotype it equals, or, for a searched or other custom cell,
    ``searched``/``custom`` with a fingerprint of the cells (the same cell gets the same six
    hex digits in every report) and what the search recorded (regularizer, dataset, seed,
    epoch)."""
    import hashlib
    import json

    from robustnas.space.genotypes import GENOTYPES

    name = genotype.provenance.get("name")
    if name:
        return str(name)
    known = next((n for n in GENOTYPES.names() if GENOTYPES.get(n) == genotype), None)
    if known:
        return known
    cells = {k: v for k, v in genotype.to_dict().items() if k not in ("provenance",)}
    digest = hashlib.sha1(json.dumps(cells, sort_keys=True).encode()).hexdigest()[:6]
    prov = genotype.provenance
    if "regularizer" not in prov and "epoch" not in prov:
        return f"custom {digest}"
    parts = [f"{prov['regularizer']} on {prov.get('dataset', '?')}" if "regularizer" in prov
             else str(prov.get("dataset", ""))]
    parts += [f"{key} {prov[key]}" for key in ("seed", "epoch") if key in prov]
    return f"searched {digest}: {', '.join(p for p in parts if p)}"


def describe_architecture(model: nn.Module, short: bool = False) -> str:
    """A human-readable architecture: genotype cells, hand-crafted name or ensemble.

    ``short``: the genotype's name (:func:`genotype_name`) instead of its cells.
    """
    model = getattr(model, "module", model)
    if isinstance(model, Network):
        if short:
            return genotype_name(model.genotype)
        return model.genotype.describe()
    members = getattr(model, "members", None)
    if short and isinstance(members, nn.ModuleList):  # a nested ensemble
        return f"ensemble of {len(members)}"
    describe = getattr(model, "describe", None)
    if callable(describe):
        return str(describe())
    return type(model).__name__


def architecture_record(model: nn.Module) -> dict[str, Any]:
    """The architecture as JSON-ready data (what a run directory's ``architecture.json``
    holds for networks that have no genotype)."""
    from robustnas.space.build import model_payload

    payload = model_payload(getattr(model, "module", model))
    payload.pop("state_dict")
    return {"format": "robustnas-architecture", "version": 1,
            "description": describe_architecture(model), **payload}


def model_genotype(model: nn.Module) -> Genotype | None:
    """The model's genotype, or None (hand-crafted networks and ensembles have none)."""
    return getattr(getattr(model, "module", model), "genotype", None)


def model_from_arch(kind: str, arch: dict[str, Any], source: str) -> nn.Module:
    """Rebuild a hand-crafted network or an ensemble from its payload (without weights)."""
    from robustnas.space.ensemble import Ensemble

    if kind == "handcrafted":
        args = dict(arch)
        name = args.pop("name")
        return build_handcrafted(str(name), **args)
    if kind == "ensemble":
        members = [_member_from_payload(p, source) for p in arch["members"]]
        return Ensemble(members, combine=arch["combine"], num_classes=arch.get("num_classes"),
                        inits=arch.get("inits"))
    raise CheckpointError(f"{source}: unknown model kind {kind!r}")


def _member_from_payload(payload: dict[str, Any], source: str) -> nn.Module:
    """A member described by a weightless payload (any kind ``model_from_payload`` knows)."""
    from robustnas.space.build import model_from_payload

    return model_from_payload(payload, source, load_weights=False)


def handcrafted_model(model: nn.Module) -> bool:
    """Whether ``model`` is a hand-crafted network."""
    return isinstance(getattr(model, "module", model), HandcraftedNet)


def save_architecture(model: nn.Module, path: str | Path) -> Path:
    """Write :func:`architecture_record` as JSON atomically."""
    import json

    from robustnas.io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps(architecture_record(model), indent=2) + "\n")
    return path


def check_same_architecture(spec: str, payload: dict[str, Any], source: str) -> None:
    """Raise UsageError unless ``spec`` names the hand-crafted network in ``payload``
    (used when a run is resumed with its architecture named again)."""
    from robustnas.space.handcrafted import parse_handcrafted

    parsed = parse_handcrafted(spec) if is_handcrafted_spec(spec) else None
    arch = payload.get("arch", {})
    saved = (arch.get("name"), float(arch.get("width", 1.0)))
    if payload.get("kind") != "handcrafted" or parsed != saved:
        raise UsageError(f"architecture {spec!r} differs from the one in {source}; resume "
                         "without it or start a new run with a different --out")


def model_info(spec: str | Path | None = None, *, ensemble: str | Sequence[str] | None = None,
               ensemble_combine: str = "features", channels: int = 36, layers: int = 20,
               classes: int = 10, in_channels: int = 3,
               image_size: int = 32) -> dict[str, Any]:
    """Size of a hand-crafted network, an ensemble (``ensemble="A,B,C"``) or the model in a
    checkpoint (``spec`` ending in ``.pt``; its own classes and channels are used), in the
    form of :func:`robustnas.space.info.genotype_info`."""
    from robustnas.space.complexity import count_macs, count_parameters

    if ensemble:
        model = build_ensemble(ensemble, combine=ensemble_combine, num_classes=classes,
                               in_channels=in_channels, C=channels, layers=layers)
        name = f"ensemble of {len(parse_member_list(ensemble))}"
    elif spec is not None and str(spec).endswith((".pt", ".pth")):
        from robustnas.io import load_checkpoint
        from robustnas.space.build import model_from_payload

        ckpt = load_checkpoint(spec)
        if not isinstance(ckpt.get("model"), dict):
            raise CheckpointError(f"{spec} holds no robustnas model")
        model = model_from_payload(ckpt["model"], source=str(spec), load_weights=False)
        cfg = getattr(model, "config", {}) or {}
        classes = int(cfg.get("num_classes") or classes)
        in_channels = int(cfg.get("in_channels") or in_channels)
        name = str(spec)
    elif spec is not None:
        model = build_architecture(spec, num_classes=classes, in_channels=in_channels,
                                   C=channels, layers=layers)
        name = str(spec)
    else:
        raise UsageError("give an architecture (genotype, hand-crafted name or checkpoint) "
                         "or --ensemble A,B,C")
    cfg = getattr(model, "config", {}) or {}
    params = count_parameters(model)
    from robustnas.space.build import model_payload

    return {
        "kind": model_payload(model)["kind"],
        "genotype": name, "channels": cfg.get("C"), "layers": cfg.get("layers"),
        "classes": classes, "in_channels": in_channels, "image_size": image_size,
        "params": params,
        "params_with_auxiliary": count_parameters(model, include_auxiliary=True),
        "macs": count_macs(model, (in_channels, image_size, image_size)),
        "describe": describe_architecture(model),
    }


def checkpoint_image_size(path: str | Path) -> int | None:
    """The image size of the dataset a model checkpoint records (None when unknown)."""
    from robustnas.io import load_checkpoint
    from robustnas.space.info_defaults import DATASET_SIZES

    dataset = load_checkpoint(path).get("dataset")
    name = dataset.get("name") if isinstance(dataset, dict) else None
    return DATASET_SIZES.get(str(name), {}).get("image_size")
