"""Search spaces as a registry: ``--space darts|nb201``.

A space is one package plus one :data:`SPACES` entry. It owns its supernet, its discrete
network, its genotype format (loading, validation, JSON), its derivation rule (the
supernet's ``genotype()``), its pictures and its sampler (:mod:`robustnas.space.sampling`).
The search loop, regularisers, retraining and evaluation only call the hooks here, so they
work on any registered space without special cases.

To add a space ``foo``: write ``robustnas/space/foo/`` with a supernet class (the interface
of :class:`~robustnas.space.nb201.supernet.NB201SuperNet`: ``weights()``,
``arch_parameters()``, ``set_arch_sampler()``, ``alpha_softmax()``, ``genotype()``,
``decisiveness()``, ``payload_kind``/``payload_arch()``), a network class and a genotype class
with ``to_dict()``/``describe()``/``count()``; then add one :class:`SearchSpace` below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from robustnas.registry import Registry


@dataclass(frozen=True)
class SearchSpace:
    """Hooks of one search space.

    ``supernet(C, layers, num_classes, in_channels, mean, std, steps)`` builds the search
    model; ``network(genotype, C, layers, num_classes, in_channels, mean, std, auxiliary)``
    the discrete one; ``load(spec)`` reads a genotype (file, name or string);
    ``owns(data)`` says whether a parsed genotype JSON object belongs to this space;
    ``draw(genotype, out_dir, prefix)`` writes its pictures; ``images(model, genotype)``
    returns TensorBoard pictures ``{tag: HxWx3 uint8}``. ``network_sizes`` is the discrete
    network's standard (C, layers), used by retraining when the user gives neither (None: the
    retraining defaults, DARTS' 36 channels and 20 cells).
    """

    name: str
    supernet: Callable[..., nn.Module]
    network: Callable[..., nn.Module]
    load: Callable[[Any], Any]
    owns: Callable[[Any], bool]
    draw: Callable[[Any, Path, str], list[Path]]
    images: Callable[[nn.Module, Any], dict[str, np.ndarray]]
    network_sizes: tuple[int, int] | None = None


SPACES: Registry[SearchSpace] = Registry("search space")


# -- DARTS -------------------------------------------------------------------------------
def _darts_supernet(C: int, layers: int, num_classes: int, in_channels: int,
                    mean: Sequence[float], std: Sequence[float], steps: int = 4) -> nn.Module:
    from robustnas.space.supernet import SuperNet

    return SuperNet(C=C, num_classes=num_classes, layers=layers, steps=steps,
                    in_channels=in_channels, mean=mean, std=std)


def _darts_network(genotype: Any, C: int, layers: int, num_classes: int, in_channels: int,
                   mean: Sequence[float], std: Sequence[float],
                   auxiliary: bool = False) -> nn.Module:
    from robustnas.space.network import Network

    return Network(genotype, C=C, num_classes=num_classes, layers=layers, auxiliary=auxiliary,
                   in_channels=in_channels, mean=mean, std=std)


def _darts_load(spec: Any) -> Any:
    from robustnas.space.genotype import load_genotype

    return load_genotype(spec)


def _darts_draw(genotype: Any, out_dir: Path, prefix: str) -> list[Path]:
    from robustnas.viz import draw_genotype

    pictures = draw_genotype(genotype, out_dir, prefix=prefix)
    return [p for paths in pictures.values() for p in paths]


def _darts_images(model: nn.Module, genotype: Any) -> dict[str, np.ndarray]:
    from robustnas.viz import alpha_heatmap, cell_image, darts_kept_cells

    probs = model.alpha_softmax()  # type: ignore[operator]
    primitives: Sequence[str] = model.primitives  # type: ignore[assignment]
    out = {f"alpha/{kind}": alpha_heatmap(probs[kind], primitives, f"softmax(α) {kind}",
                                          kept=darts_kept_cells(getattr(genotype, kind),
                                                                primitives))
           for kind in ("normal", "reduce")}
    out["cell/normal"] = cell_image(genotype.normal, genotype.normal_concat)
    out["cell/reduce"] = cell_image(genotype.reduce, genotype.reduce_concat)
    return out


SPACES.add("darts", SearchSpace(
    "darts", _darts_supernet, _darts_network, _darts_load,
    owns=lambda data: isinstance(data, dict) and data.get("format", "robustnas-genotype")
    == "robustnas-genotype",
    draw=_darts_draw, images=_darts_images))


# -- NAS-Bench-201 -----------------------------------------------------------------------
def _nb201_supernet(C: int, layers: int, num_classes: int, in_channels: int,
                    mean: Sequence[float], std: Sequence[float], steps: int = 4) -> nn.Module:
    from robustnas.space.nb201.supernet import NB201SuperNet

    return NB201SuperNet(C=C, N=nb201_cells_per_stage(layers), num_classes=num_classes,
                         in_channels=in_channels, mean=mean, std=std)


def _nb201_network(genotype: Any, C: int, layers: int, num_classes: int, in_channels: int,
                   mean: Sequence[float], std: Sequence[float],
                   auxiliary: bool = False) -> nn.Module:
    from robustnas.space.nb201.network import NB201Network

    return NB201Network(genotype, C=C, N=nb201_cells_per_stage(layers), num_classes=num_classes,
                        in_channels=in_channels, mean=mean, std=std)


def _nb201_load(spec: Any) -> Any:
    from robustnas.space.nb201.genotype import load_nb201_genotype

    return load_nb201_genotype(spec)


def _nb201_draw(genotype: Any, out_dir: Path, prefix: str) -> list[Path]:
    from robustnas.io import ensure_writable_dir
    from robustnas.space.nb201.picture import draw_nb201_cell

    out = ensure_writable_dir(out_dir)
    return draw_nb201_cell(genotype, out / f"{prefix}cell", title="NAS-Bench-201 cell")


def _nb201_images(model: nn.Module, genotype: Any) -> dict[str, np.ndarray]:
    from robustnas.space.nb201.picture import nb201_cell_image
    from robustnas.viz import alpha_heatmap

    probs = model.alpha_softmax()["cell"]  # type: ignore[operator]
    primitives: Sequence[str] = model.primitives  # type: ignore[assignment]
    # Every edge is kept in NAS-Bench-201, with its argmax operation (none included).
    kept = [(k, list(primitives).index(op)) for k, op in enumerate(genotype.ops)]
    return {"alpha/cell": alpha_heatmap(probs, primitives, "softmax(α)", kept=kept),
            "cell/cell": nb201_cell_image(genotype)}


def nb201_cells_per_stage(layers: int) -> int:
    """Cells per stage for ``layers`` (the search/retrain option): ``layers`` counts the cells
    of all three stages, so NAS-Bench-201's N = 5 is ``layers: 15``; at least 1."""
    return max(1, int(layers) // 3)


SPACES.add("nb201", SearchSpace(
    "nb201", _nb201_supernet, _nb201_network, _nb201_load,
    owns=lambda data: isinstance(data, dict) and data.get("format")
    == "robustnas-nb201-genotype",
    draw=_nb201_draw, images=_nb201_images,
    network_sizes=(16, 15)))  # NAS-Bench-201: 16 stem channels, 3 stages of N = 5 cells


# -- lookups -----------------------------------------------------------------------------
def get_space(name: str) -> SearchSpace:
    """The space registered as ``name`` (UsageError listing the spaces otherwise)."""
    return SPACES.get(name)


def space_of_genotype(genotype: Any) -> SearchSpace:
    """The space a genotype object belongs to."""
    return SPACES.get(getattr(genotype, "space", None) or "darts")


def space_of_model(model: nn.Module) -> SearchSpace:
    """The space of a supernet or network (``model.space``; DARTS when absent)."""
    return SPACES.get(getattr(getattr(model, "module", model), "space", None) or "darts")


def spec_space(spec: str | Path) -> str:
    """Which space a genotype spec names: a NAS-Bench-201 string (``|op~0|+...``) or a JSON
    file of an NB201 genotype is ``nb201``; anything else (DARTS names and files) ``darts``."""
    text = str(spec).strip()
    if text.startswith("|"):
        return "nb201"
    path = Path(text)
    if path.suffix == ".json" and path.is_file():
        from robustnas.errors import GenotypeError
        from robustnas.space.genotype import read_genotype_json

        try:  # size, encoding and nesting limits of genotype files
            data = read_genotype_json(path)
        except GenotypeError:
            return "darts"  # the DARTS loader reports the problem
        for name in SPACES:
            if name != "darts" and SPACES.get(name).owns(data):
                return name
    return "darts"


def load_any_genotype(spec: Any, space: str | None = None) -> Any:
    """A genotype of ``space`` (detected from ``spec`` when None): see :func:`spec_space`."""
    if not isinstance(spec, (str, Path)):
        return spec
    return SPACES.get(space or spec_space(spec)).load(spec)
