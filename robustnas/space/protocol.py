"""The search-space protocol: everything the generic layers need from a space.

A space is a package under ``robustnas/space/`` (or anywhere, for a space defined by a user)
with one :class:`SearchSpace` subclass and one registry line::

    register_space(MySpace())

The search loop, retraining, evaluation, studies and the command line only call the methods
below, so they work on every registered space without naming one. What a space does not have
is declared (:attr:`SearchSpace.capabilities`); a command that needs a missing capability
refuses in one line (:func:`require`, :func:`refusal`) naming the space, the capability and
what to use instead (:attr:`SearchSpace.instead`).

Required (abstract) members:

=====================  ============================================================
``name``               registry name (``--space NAME``), also ``genotype.space``
``genotype_format``    the ``"format"`` tag of the space's genotype JSON files
``load(spec)``         a genotype from a name, file path or string form (strict)
``from_dict(data)``    a genotype from its parsed JSON (strict; exact round trip)
``network(...)``       the discrete network of a genotype
``draw(rng, prov)``    one uniformly random genotype (``random.Random``)
``size``               number of distinct genotypes (``math.inf`` if unbounded)
``suggest(trial)``     one genotype through an Optuna trial (study samplers)
=====================  ============================================================

Optional members have working defaults: ``recognises(text)`` (is a string the space's own
form?), ``save``, ``describe``, ``name_of``, ``check_sizes`` (depth/size rules),
``network_sizes`` (standard ``(C, layers)`` for retraining), ``info``, ``draw_pictures``,
``images``, ``model_kinds`` (how checkpoints name and rebuild the space's models),
``supernet`` and ``lipschitz_adapter``/``lipschitz_bound`` (with their capabilities).
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from robustnas.errors import UsageError

if TYPE_CHECKING:  # the registry is read by the command line before PyTorch is imported
    import numpy as np
    from torch import nn

#: A differentiable supernet with ``genotype()`` (derivation) and ``decisiveness()``.
SUPERNET = "supernet"
#: A Lipschitz composition: the log-normal regulariser's adapter on the supernet.
LIPSCHITZ_REGULARIZER = "lipschitz-regularizer"
#: A Lipschitz upper bound of the discrete network (``evaluate --measures lipschitz``).
LIPSCHITZ_BOUND = "lipschitz-bound"

CAPABILITY_WORDS = {SUPERNET: "no differentiable supernet",
                    LIPSCHITZ_REGULARIZER: "no Lipschitz composition for the regularizer",
                    LIPSCHITZ_BOUND: "no Lipschitz bound of its networks"}


@dataclass(frozen=True)
class ModelKind:
    """How a checkpoint names and rebuilds one kind of model.

    ``rebuild(payload, source)`` returns the untrained model of a payload
    (``{"kind", "arch", ...}``); ``describe(model)`` returns the payload without its
    ``state_dict`` for a model whose ``payload_kind`` is ``name`` (None: the default,
    ``{"kind": name, "arch": model.payload_arch()}``); ``genotype(payload, source)`` reads
    the genotype a network payload holds without building the network (None: it is read
    from the rebuilt model, which costs a whole network for a large one).
    """

    name: str
    rebuild: Callable[[Mapping[str, Any], str], nn.Module]
    describe: Callable[[nn.Module], dict[str, Any]] | None = None
    genotype: Callable[[Mapping[str, Any], str], Any] | None = None


class SearchSpace(ABC):
    """One search space (see the module docstring for the required and optional members)."""

    name: ClassVar[str]
    genotype_format: ClassVar[str]
    #: What the space has beyond the required members (:data:`SUPERNET`, ...).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: What to use instead of a capability the space lacks (shown when a command refuses).
    instead: ClassVar[Mapping[str, str]] = {}
    #: The discrete network's standard ``(C, layers)`` for retraining; None: the retraining
    #: defaults. A space whose networks take neither says so in :attr:`sized`.
    network_sizes: ClassVar[tuple[int, int] | None] = None
    #: Whether ``C`` and ``layers`` apply to the space's networks (False: the genotype fixes
    #: the whole network, as for NARes' WideResNets).
    sized: ClassVar[bool] = True
    #: Fewest ``layers`` the space's networks and supernet accept.
    min_layers: ClassVar[int] = 1
    #: What the ``layers`` option counts in this space (for help texts and errors).
    layers_meaning: ClassVar[str] = "cells"
    #: Tabular benchmarks over this space (``table --bench NAME``), first the default one.
    benches: ClassVar[tuple[str, ...]] = ()

    # -- genotype codec --------------------------------------------------------------------
    @abstractmethod
    def load(self, spec: Any) -> Hashable:
        """A genotype from ``spec``: a name, a JSON file path, the space's string form or a
        genotype already; :class:`~robustnas.errors.GenotypeError` in one line otherwise."""

    @abstractmethod
    def from_dict(self, data: Any, source: str = "genotype") -> Hashable:
        """The genotype of parsed JSON ``data`` (strict validation, exact round trip with
        ``genotype.to_dict()``)."""

    def owns(self, data: Any) -> bool:
        """Whether parsed genotype JSON ``data`` belongs to this space (its format tag)."""
        return isinstance(data, dict) and data.get("format") == self.genotype_format

    def recognises(self, text: str) -> bool:
        """Whether ``text`` (not a file) is this space's string form or one of its names."""
        return False

    def save(self, genotype: Any, path: str | Path) -> Path:
        """Write ``genotype`` as JSON atomically."""
        import json

        from robustnas.io import atomic_write_text

        path = Path(path)
        atomic_write_text(path, json.dumps(genotype.to_dict(), indent=2) + "\n")
        return path

    def describe(self, genotype: Any) -> str:
        """A one-line human-readable form of ``genotype``."""
        return str(genotype.describe())

    def name_of(self, genotype: Any) -> str:
        """A short name telling genotypes apart in reports (recorded name or string form)."""
        name = getattr(genotype, "provenance", {}).get("name")
        return str(name) if name else self.describe(genotype)

    # -- networks --------------------------------------------------------------------------
    @abstractmethod
    def network(self, genotype: Any, *, C: int, layers: int, num_classes: int,
                in_channels: int, mean: Sequence[float] | None, std: Sequence[float] | None,
                auxiliary: bool = False) -> nn.Module:
        """The discrete network of ``genotype`` (``C``/``layers`` ignored when not
        :attr:`sized`). The model has ``space = self.name`` and a ``payload_kind``."""

    def check_sizes(self, C: int, layers: int, what: str) -> None:
        """Raise UsageError in one line when ``C``/``layers`` break the space's rules."""
        if self.sized and int(layers) < self.min_layers:
            raise UsageError(f"{what}: --layers must be at least {self.min_layers} for space "
                             f"{self.name} ({self.layers_meaning}), got {layers}")
        if self.sized and int(C) < 1:
            raise UsageError(f"{what}: --channels must be positive, got {C}")

    def model_kinds(self) -> Sequence[ModelKind]:
        """The payload kinds of the space's models (checkpoints name them)."""
        return ()

    def info(self, genotype: Any, *, C: int, layers: int, classes: int, in_channels: int,
             image_size: int) -> dict[str, Any]:
        """Parameters, MACs and sizes of ``genotype``'s network for a dataset."""
        from robustnas.space.complexity import count_macs, count_parameters

        model = self.network(genotype, C=C, layers=layers, num_classes=classes,
                             in_channels=in_channels, mean=None, std=None, auxiliary=False)
        return {"space": self.name, "genotype": self.describe(genotype),
                "channels": C if self.sized else None, "layers": layers if self.sized else None,
                "classes": classes, "in_channels": in_channels, "image_size": image_size,
                "params": count_parameters(model),
                "macs": count_macs(model, (in_channels, image_size, image_size))}

    # -- sampling --------------------------------------------------------------------------
    size: ClassVar[float] = math.inf

    @property
    def sampler_name(self) -> str:
        """The uniform sampler's name recorded in sampled genotypes' provenance."""
        return f"uniform-{self.name}"

    @abstractmethod
    def draw(self, rng: random.Random, provenance: dict[str, Any]) -> Hashable:
        """One genotype drawn uniformly with ``rng`` (sequential draws: prefix-stable)."""

    @abstractmethod
    def suggest(self, trial: Any, provenance: dict[str, Any] | None = None) -> Hashable:
        """One genotype through Optuna ``trial`` (random sampling is uniform)."""

    # -- pictures --------------------------------------------------------------------------
    def draw_pictures(self, genotype: Any, out_dir: Path, prefix: str) -> list[Path]:
        """Write pictures of ``genotype`` under ``out_dir`` (file names start ``prefix``)."""
        return []

    def images(self, model: nn.Module, genotype: Any) -> dict[str, np.ndarray]:
        """TensorBoard pictures ``{tag: HxWx3 uint8}`` of a supernet and its genotype."""
        return {}

    # -- optional capabilities -------------------------------------------------------------
    def supernet(self, *, C: int, layers: int, num_classes: int, in_channels: int,
                 mean: Sequence[float] | None, std: Sequence[float] | None,
                 steps: int = 4, relaxation: Any = None) -> nn.Module:
        """The differentiable supernet (capability :data:`SUPERNET`): ``weights()``,
        ``arch_parameters()``, ``set_arch_sampler()``, ``alpha_softmax()``,
        ``genotype(provenance)``, ``decisiveness()``, ``primitives``; and for the search
        relaxations (:mod:`robustnas.space.relaxations`) ``relaxation``,
        ``set_relaxation(relaxation)`` and ``set_epoch(epoch, total_epochs)``.
        ``relaxation``: a :class:`~robustnas.space.relaxations.Relaxation` or its name
        (None: ``darts``)."""
        raise refusal(self, SUPERNET, "search")

    def lipschitz_adapter(self, model: nn.Module, options: dict[str, Any]) -> Any:
        """What the log-normal Lipschitz regulariser needs from supernet ``model`` (capability
        :data:`LIPSCHITZ_REGULARIZER`; ``options`` are the regulariser's parsed options):
        ``sampler`` (an :class:`~robustnas.space.arch_sampler.ArchSampler`, installed on the
        supernet; usually a :class:`~robustnas.space.lognormal_sampler.LogNormalArchSampler`),
        ``num_nodes`` (node sums in the bound), ``constants(input_shape)`` (λ, cells × edges
        × ops, without autograd), ``log_moments(lambdas)`` (``(μ_F, σ_F²)`` of log λ_F,
        differentiable in the architecture parameters), ``state_dict()``/
        ``load_state_dict(vectors)`` (tensors a resumed search needs, e.g. power-iteration
        vectors; ``{}`` when there are none). Called when the search is set up, before the
        run directory is written."""
        raise refusal(self, LIPSCHITZ_REGULARIZER, "regularizer lipschitz")

    def lipschitz_bound(self, model: nn.Module, bound: Callable[[nn.Module], float]) -> float:
        """An upper bound of the Lipschitz constant of network or supernet ``model``'s
        logits, composing ``bound(layer)`` (:meth:`robustnas.lipschitz.LayerBounder.module`)
        over its layers (capability :data:`LIPSCHITZ_BOUND`). Models that define
        ``lipschitz_bound(bound)`` themselves are asked directly, so a space usually
        delegates to that method; this is for models that do not."""
        raise refusal(self, LIPSCHITZ_BOUND, "lipschitz bound")


def refusal(space: SearchSpace, capability: str, command: str) -> UsageError:
    """The one-line refusal of ``command`` on a space without ``capability``."""
    words = CAPABILITY_WORDS.get(capability, f"no {capability}")
    hint = space.instead.get(capability)
    return UsageError(f"{command}: space {space.name} has {words}"
                      + (f"; {hint}" if hint else ""))


def require(space: SearchSpace, capability: str, command: str) -> None:
    """Raise :func:`refusal` unless ``space`` declares ``capability``."""
    if capability not in space.capabilities:
        raise refusal(space, capability, command)


def has(space: SearchSpace, capability: str) -> bool:
    """Whether ``space`` declares ``capability``."""
    return capability in space.capabilities


REQUIRED = ("name", "genotype_format", "load", "from_dict", "network", "draw", "suggest")


def check_space(space: Any) -> SearchSpace:
    """Check that ``space`` implements the protocol (called when it registers)."""
    if not isinstance(space, SearchSpace):
        raise TypeError(f"a search space must subclass robustnas.space.protocol.SearchSpace, "
                        f"got {type(space).__name__}")
    missing = [m for m in REQUIRED if not hasattr(space, m)]
    abstract = sorted(getattr(type(space), "__abstractmethods__", ()))
    if missing or abstract:
        raise TypeError(f"search space {type(space).__name__} lacks {missing + abstract}")
    if not isinstance(space.name, str) or not space.name or "," in space.name:
        raise TypeError(f"search space {type(space).__name__}: name must be a non-empty word")
    unknown = set(space.capabilities) - set(CAPABILITY_WORDS)
    if unknown:
        raise TypeError(f"search space {space.name}: unknown capabilities {sorted(unknown)}")
    if SUPERNET in space.capabilities and type(space).supernet is SearchSpace.supernet:
        raise TypeError(f"search space {space.name} declares a supernet but defines none")
    return space
