"""The one front door to models: :func:`create_model` turns any architecture spec into a model.

A spec is a genotype of any space (an object, a JSON file, a named genotype such as
``DARTS_V2``, a space's string form such as an NAS-Bench-201 cell ``|...|`` or a NARes
``5,10,5,10,5,10``), a hand-crafted name (``resnet18@0.25``, ``wrn-28-10``), an ensemble
(``ensemble="A,B,C"``) or a checkpoint payload (``{"kind": ..., "arch": ...}``). Every
command (``retrain``, ``evaluate``, ``info``, studies, benchmarks) builds models here, as
timm's ``create_model`` does for its models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from robustnas.errors import CheckpointError, GenotypeError, UsageError
from robustnas.space import ensemble as _ensemble  # registers the "ensemble" model kind
from robustnas.space.handcrafted import build_handcrafted, is_handcrafted, parse_handcrafted
from robustnas.space.kinds import MODEL_KINDS, model_payload, rebuild
from robustnas.space.naming import describe_model, genotype_name
from robustnas.space.spaces import get_space, load_any_genotype, load_builtin_spaces

parse_member_list = _ensemble.parse_member_list

__all__ = ["MODEL_KINDS", "architecture_record", "build_architecture", "build_ensemble",
           "check_same_architecture", "create_model", "describe_architecture", "genotype_name",
           "is_handcrafted_spec", "model_from_payload", "model_genotype", "model_info",
           "model_payload", "parse_member_list", "save_architecture"]


def is_handcrafted_spec(spec: str | Path) -> bool:
    """True for a hand-crafted name (``resnet18@0.25``) that is not an existing file."""
    return not Path(str(spec)).exists() and is_handcrafted(str(spec))


def create_model(spec: Any = None, *, ensemble: str | Sequence[str] | None = None,
                 combine: str = "features", inits: str | Sequence[str] | None = None,
                 space: str | None = None, num_classes: int = 10, in_channels: int = 3,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 C: int | None = None, layers: int | None = None,
                 auxiliary: bool = False, load_weights: bool = True) -> nn.Module:
    """The model ``spec`` names (see the module docstring).

    ``space`` checks (or, for a string of no recognisable form, chooses) the genotype's
    space; ``C`` and ``layers`` default to the space's standard sizes (DARTS' retraining
    network: 36 channels, 20 cells); ``auxiliary`` adds DARTS' auxiliary head. A payload is
    rebuilt with its weights unless ``load_weights`` is False.
    """
    if ensemble is not None:
        return build_ensemble(ensemble, combine=combine, inits=inits, num_classes=num_classes,
                              in_channels=in_channels, mean=mean, std=std, C=C, layers=layers)
    if isinstance(spec, Mapping):
        return model_from_payload(spec, load_weights=load_weights)
    if spec is None:
        raise UsageError("give an architecture (genotype, hand-crafted name or checkpoint) "
                         "or an ensemble A,B,C")
    if isinstance(spec, (str, Path)) and is_handcrafted_spec(spec):
        return build_handcrafted(str(spec), num_classes=num_classes, in_channels=in_channels,
                                 mean=mean, std=std)
    genotype = load_any_genotype(spec, space)
    owner = get_space(getattr(genotype, "space", None))
    if space and owner.name != space:
        raise UsageError(f"architecture {spec!r} is of space {owner.name}, not {space}")
    default_c, default_layers = owner.network_sizes or (36, 20)
    C = default_c if C is None else C
    layers = default_layers if layers is None else layers
    owner.check_sizes(C, layers, "network")
    return owner.network(genotype, C=C, layers=layers, num_classes=num_classes,
                         in_channels=in_channels, mean=mean, std=std, auxiliary=auxiliary)


def build_architecture(spec: Any, *, num_classes: int = 10, in_channels: int = 3,
                       mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                       C: int = 36, layers: int = 20, auxiliary: bool = False) -> nn.Module:
    """:func:`create_model` with explicit ``C``/``layers`` (the retraining options; a space
    with standard sizes of its own uses them as given)."""
    return create_model(spec, num_classes=num_classes, in_channels=in_channels, mean=mean,
                        std=std, C=C, layers=layers, auxiliary=auxiliary)


def build_ensemble(specs: str | Sequence[str], combine: str = "features",
                   inits: str | Sequence[str] | None = None, **kwargs: Any) -> nn.Module:
    """A joint :class:`~robustnas.space.ensemble.Ensemble` of the members ``specs``
    (``"A,B,C"`` or a list; repeats are independent copies with different initialisations).
    ``inits``: ``"default"``, ``"cycled"`` or a comma list of schemes (see
    :func:`robustnas.space.ensemble.resolve_inits`); ``kwargs`` go to :func:`create_model`
    (members never get an auxiliary head)."""
    names = parse_member_list(specs)
    kwargs = {**kwargs, "auxiliary": False}
    members = [create_model(name, **kwargs) for name in names]
    return _ensemble.Ensemble(members, combine=combine,
                              num_classes=kwargs.get("num_classes", 10),
                              inits=_ensemble.resolve_inits(inits, len(members)))


def model_from_payload(payload: Mapping[str, Any], source: str = "checkpoint",
                       load_weights: bool = True) -> nn.Module:
    """Rebuild the model a checkpoint payload describes (every kind registered)."""
    load_builtin_spaces()
    return rebuild(payload, source, load_weights)


def describe_architecture(model: nn.Module, short: bool = False) -> str:
    """A human-readable architecture (see :func:`robustnas.space.naming.describe_model`)."""
    return describe_model(model, short)


def architecture_record(model: nn.Module) -> dict[str, Any]:
    """The architecture as JSON-ready data (what a run directory's ``architecture.json``
    holds for networks that have no genotype)."""
    payload = model_payload(getattr(model, "module", model))
    payload.pop("state_dict")
    return {"format": "robustnas-architecture", "version": 1,
            "description": describe_architecture(model), **payload}


def model_genotype(model: nn.Module) -> Any:
    """The model's genotype, or None (hand-crafted networks and ensembles have none)."""
    genotype = getattr(getattr(model, "module", model), "genotype", None)
    return None if callable(genotype) else genotype


def save_architecture(model: nn.Module, path: str | Path) -> Path:
    """Write :func:`architecture_record` as JSON atomically."""
    import json

    from robustnas.io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps(architecture_record(model), indent=2) + "\n")
    return path


def check_same_architecture(spec: str, payload: Mapping[str, Any], source: str) -> None:
    """Raise UsageError unless ``spec`` names the architecture in ``payload`` (used when a run
    is resumed with its architecture named again): a hand-crafted name, or a genotype of any
    space (compared by its cells, not its provenance)."""
    kind = payload.get("kind")
    if is_handcrafted_spec(spec):
        parsed = parse_handcrafted(spec)
        arch = payload.get("arch", {})
        same = kind == "handcrafted" and parsed == (arch.get("name"),
                                                    float(arch.get("width", 1.0)))
    else:
        try:
            saved = payload_genotype(payload, source)
        except (CheckpointError, UsageError, GenotypeError, KeyError, TypeError):
            saved = None  # not a readable network payload: no genotype to be the same as
        given = load_any_genotype(spec)
        same = saved is not None and _cells(given) == _cells(saved)
    if not same:
        raise UsageError(f"architecture {spec!r} differs from the one in {source}; resume "
                         "without it or start a new run with a different --out")


def payload_genotype(payload: Mapping[str, Any], source: str = "checkpoint") -> Any:
    """The genotype of a network payload (None for hand-crafted networks, ensembles and
    supernets), read by its kind's ``genotype`` when it has one, else from the rebuilt
    (weightless) model."""
    load_builtin_spaces()
    kind = MODEL_KINDS.get(str(payload.get("kind")))
    if kind.genotype is not None:
        return kind.genotype(payload, source)
    return model_genotype(model_from_payload(payload, source, load_weights=False))


def _cells(genotype: Any) -> Any:
    """A genotype's JSON without its provenance (what makes two networks the same)."""
    data = dict(genotype.to_dict())
    data.pop("provenance", None)
    return data


def model_info(spec: Any = None, *, ensemble: str | Sequence[str] | None = None,
               ensemble_combine: str = "features", channels: int | None = None,
               layers: int | None = None, classes: int = 10, in_channels: int = 3,
               image_size: int = 32, space: str | None = None) -> dict[str, Any]:
    """Size of any architecture: a genotype of any space (its space's ``info``), a
    hand-crafted network, an ensemble (``ensemble="A,B,C"``) or the model in a checkpoint
    (``spec`` ending in ``.pt``; its own classes and channels are used)."""
    from robustnas.space.complexity import count_macs, count_parameters

    for name, value, low in (("channels", channels, 1), ("layers", layers, 1),
                             ("classes", classes, 1), ("in_channels", in_channels, 1),
                             ("image_size", image_size, 4)):
        if value is not None and value < low:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    if ensemble:
        model = build_ensemble(ensemble, combine=ensemble_combine, num_classes=classes,
                               in_channels=in_channels, C=channels, layers=layers)
        name = f"ensemble of {len(parse_member_list(ensemble))}"
    elif spec is not None and str(spec).endswith((".pt", ".pth")):
        from robustnas.io import load_checkpoint

        ckpt = load_checkpoint(spec)
        if not isinstance(ckpt.get("model"), dict):
            raise CheckpointError(f"{spec} holds no robustnas model")
        model = model_from_payload(ckpt["model"], source=str(spec), load_weights=False)
        cfg = getattr(model, "config", {}) or {}
        classes = int(cfg.get("num_classes") or classes)
        in_channels = int(cfg.get("in_channels") or in_channels)
        name = str(spec)
    elif spec is not None and not is_handcrafted_spec(spec):
        genotype = load_any_genotype(spec, space)
        owner = get_space(getattr(genotype, "space", None))
        default_c, default_layers = owner.network_sizes or (36, 20)
        C = default_c if channels is None else channels
        n = default_layers if layers is None else layers
        owner.check_sizes(C, n, "info")
        return owner.info(genotype, C=C, layers=n, classes=classes, in_channels=in_channels,
                          image_size=image_size)
    elif spec is not None:
        model = create_model(spec, num_classes=classes, in_channels=in_channels)
        name = str(spec)
    else:
        raise UsageError("give an architecture (genotype, hand-crafted name or checkpoint) "
                         "or --ensemble A,B,C")
    cfg = getattr(model, "config", {}) or {}
    return {
        "kind": model_payload(model)["kind"],
        "genotype": name, "channels": cfg.get("C"), "layers": cfg.get("layers"),
        "classes": classes, "in_channels": in_channels, "image_size": image_size,
        "params": count_parameters(model),
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
