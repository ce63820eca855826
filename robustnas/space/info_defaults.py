"""Which network ``robustnas info`` sizes by default: the one the genotype was searched for.

A genotype found on the digits should be reported at the digits' input size (1×8×8) and at
the size robustnas trains such networks (``experiments/configs/retrain_tiny.yaml``), not at
CIFAR's 3×32×32 with C = 36 and 20 cells. The dataset comes from the genotype's provenance;
every value given explicitly (``--channels``, ``--layers``, ``--classes``, ``--in-channels``,
``--image-size``) wins.
"""

from __future__ import annotations

from typing import Any

# dataset -> input channels, image size, classes, C and cells of the network trained on it
DATASET_SIZES: dict[str, dict[str, int]] = {
    "cifar10": {"in_channels": 3, "image_size": 32, "classes": 10, "channels": 36,
                "layers": 20},
    "cifar100": {"in_channels": 3, "image_size": 32, "classes": 100, "channels": 36,
                 "layers": 20},
    "svhn": {"in_channels": 3, "image_size": 32, "classes": 10, "channels": 36, "layers": 20},
    "digits": {"in_channels": 1, "image_size": 8, "classes": 10, "channels": 8, "layers": 5},
}
DEFAULT_DATASET = "cifar10"
KEYS = ("channels", "layers", "classes", "in_channels", "image_size")


def provenance_of(spec: str, space: str | None = None) -> dict[str, Any]:
    """The provenance of a genotype file or name, ``{}`` when ``spec`` is not a genotype."""
    from robustnas.errors import RobustnasError
    from robustnas.space.spaces import load_any_genotype

    try:
        return dict(getattr(load_any_genotype(spec, space), "provenance", {}) or {})
    except (RobustnasError, OSError, ValueError, TypeError):
        return {}


def _space_sizes(spec: str | None, space: str | None) -> tuple[int, int] | None:
    """The standard ``(C, layers)`` of the genotype's space, when it has its own."""
    from robustnas.errors import RobustnasError
    from robustnas.space.spaces import get_space, spec_space

    if not spec or str(spec).endswith((".pt", ".pth")):
        return None
    try:
        return get_space(space or spec_space(spec)).network_sizes
    except (RobustnasError, OSError, ValueError):
        return None


def default_sizes(spec: str | None, given: dict[str, int | None],
                  space: str | None = None) -> tuple[dict[str, int], str | None]:
    """Sizes for ``spec``'s network: ``given`` values, the rest from its provenance's dataset.

    Returns the sizes and a sentence saying where the defaults came from (``None`` when the
    CIFAR-10 defaults were used because the genotype names no known dataset, or nothing was
    left to default).
    """
    missing = [k for k in KEYS if given.get(k) is None]
    prov = provenance_of(spec, space) if spec and missing else {}
    dataset = str(prov.get("dataset") or "")
    table = DATASET_SIZES.get(dataset)
    note = None
    if table is None:
        table = dict(DATASET_SIZES[DEFAULT_DATASET])
        supernet = prov.get("supernet") or {}
        for key, src in (("classes", "num_classes"), ("in_channels", "in_channels")):
            if isinstance(supernet.get(src), int):
                table[key] = supernet[src]
        if dataset and missing:
            note = (f"the genotype was searched on {dataset}, whose sizes are not known here; "
                    f"using CIFAR-10's defaults, override with --image-size, --channels, ...")
    elif missing:
        used = ", ".join(f"{k.replace('_', '-')} {table[k]}" for k in missing)
        note = (f"sizes for {dataset} (the dataset in the genotype's provenance): {used}; "
                f"override with --{missing[0].replace('_', '-')} ...")
    standard = _space_sizes(spec, space) if missing else None
    if standard is not None:  # the space's own network (NAS-Bench-201: C 16, 15 cells)
        table = {**table, "channels": standard[0], "layers": standard[1]}
    sizes = {k: int(given[k]) if given.get(k) is not None else int(table[k]) for k in KEYS}
    return sizes, note
