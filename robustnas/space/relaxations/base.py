"""The relaxation interface, its registry and the checked parsing of its options.

A relaxation says how a supernet turns its discrete choices into something a gradient can
train. A supernet asks its relaxation three things:

* :meth:`Relaxation.sampler`: the :class:`~robustnas.space.arch_sampler.ArchSampler` that
  turns α into each pass's mixing weights (and may own architecture parameters, e.g.
  PC-DARTS' β, optimised with α; or draw a single path, GDAS);
* :attr:`Relaxation.partial_channels`: ``K`` when only ``C/K`` channels of an edge pass
  through its mixed op (:mod:`robustnas.space.partial_channels`), else 1;
* :attr:`Relaxation.replaceable_sampler`: whether a regulariser may install its own
  sampler in place of the relaxation's (the log-normal Lipschitz method and DrNAS do).

The search asks :meth:`Relaxation.check_search` whether its settings can work with the
relaxation; what cannot is refused in one line when the config is validated.

Options are declared as a frozen dataclass of :func:`robustnas.options.option` fields
(``low``/``high``/``choices`` are checked; ``help`` documents them) and given as a mapping
(YAML ``relaxation_options:`` or ``--set relaxation_options="{k: 8}"``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from robustnas.config import parse_number
from robustnas.errors import UsageError
from robustnas.options import check_values
from robustnas.registry import Registry
from robustnas.space.arch_sampler import ArchSampler

#: Relaxations by name; every module of this package registers its own, so a new
#: relaxation is a new file there.
RELAXATIONS: Registry[type[Relaxation]] = Registry(
    "relaxation", discover=("robustnas.space.relaxations",))
#: The relaxation of a supernet that names none (today's DARTS softmax mixture).
DEFAULT_RELAXATION = "darts"


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A relaxation without options."""


class Relaxation:
    """Base class: DARTS' softmax mixture over every operation of every edge."""

    name: ClassVar[str] = DEFAULT_RELAXATION
    #: The options' dataclass (frozen; fields declared with ``robustnas.options.option``).
    options_type: ClassVar[type] = NoOptions
    #: Search orders this relaxation cannot run with, and why (one clause each).
    refused_orders: ClassVar[Mapping[int, str]] = {}
    #: Regularisers it cannot run with, and why (one clause each).
    refused_regularizers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(self.name, self.options_type, options)

    # -- what a supernet asks ---------------------------------------------------------------
    @property
    def partial_channels(self) -> int:
        """``K``: an edge's mixed op sees ``C/K`` of its channels (1: all of them)."""
        return 1

    @property
    def replaceable_sampler(self) -> bool:
        """Whether a regulariser's sampler (log-normal, Dirichlet) may replace this one's."""
        return True

    def sampler(self, node_sizes: Sequence[int], num_ops: int,
                cell_types: Sequence[str]) -> ArchSampler:
        """The arch sampler for a supernet whose cells have nodes of in-degrees
        ``node_sizes`` (their edges numbered node by node), ``num_ops`` candidates per edge
        and one α per entry of ``cell_types`` (``("normal", "reduce")``, ``("cell",)``:
        the sampler is called with ``reduction`` = the entry's index)."""
        return ArchSampler()

    # -- what the search asks -------------------------------------------------------------
    def check_search(self, *, order: int, regularizers: Sequence[str], C: int) -> None:
        """Refuse, in one line, search settings that cannot work with this relaxation."""
        if order in self.refused_orders:
            raise UsageError(f"relaxation {self.name} cannot run with order {order}: "
                             f"{self.refused_orders[order]}")
        for name in regularizers:
            why = self.regularizer_refusal(name)
            if why:
                raise UsageError(f"relaxation {self.name} cannot run with regularizer {name}: "
                                 f"{why}")
        self.check_channels(C)

    def regularizer_refusal(self, name: str) -> str | None:
        """Why regulariser ``name`` cannot run with this relaxation (None: it can)."""
        return self.refused_regularizers.get(name)

    def check_channels(self, C: int) -> None:
        """Refuse a supernet width the relaxation cannot build (UsageError)."""

    # -- identity and checkpoints ---------------------------------------------------------
    def to_arch(self) -> dict[str, Any]:
        """The supernet constructor arguments that rebuild this relaxation (checkpoints)."""
        return {"relaxation": self.name,
                "relaxation_options": dataclasses.asdict(self.options)}

    def describe(self) -> str:
        """``pc-darts (k=4, edge_normalization=True)``, or the bare name without options."""
        values = dataclasses.asdict(self.options)
        inner = ", ".join(f"{k}={v}" for k, v in values.items())
        return f"{self.name} ({inner})" if inner else self.name

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Relaxation) and other.name == self.name
                and other.options == self.options)

    def __hash__(self) -> int:
        return hash((self.name, self.options))

    def __repr__(self) -> str:
        return f"Relaxation({self.describe()})"


def make_relaxation(spec: str | Relaxation | None = None,
                    options: Mapping[str, Any] | None = None) -> Relaxation:
    """A relaxation from its name and options (``None``: DARTS'); a :class:`Relaxation`
    given without options is returned as it is. Unknown names or options: UsageError."""
    if isinstance(spec, Relaxation):
        if options:
            raise UsageError("give the options of a Relaxation object when building it")
        return spec
    name = DEFAULT_RELAXATION if spec is None else str(spec).strip()
    if options is not None and not isinstance(options, Mapping):
        raise UsageError(f"relaxation_options must be a mapping of option: value, "
                         f"got {options!r}")
    return RELAXATIONS.get(name)(**dict(options or {}))


# -- options ---------------------------------------------------------------------------------
def parse_options(relaxation: str, cls: type, given: Mapping[str, Any]) -> Any:
    """An instance of the options dataclass ``cls`` from ``given`` (YAML values or strings),
    with unknown names, wrong types and values outside the declared ranges refused."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        known = ", ".join(fields) or "none"
        raise UsageError(f"relaxation {relaxation}: unknown option(s) {', '.join(unknown)} "
                         f"(known: {known})")
    hints = typing.get_type_hints(cls)
    values = {name: _convert(relaxation, name, value, hints[name])
              for name, value in given.items()}
    options = cls(**values)
    try:
        check_values(options)
    except UsageError as exc:
        raise UsageError(f"relaxation {relaxation}: option {exc}") from None
    return options


def _convert(relaxation: str, name: str, value: Any, kind: Any) -> Any:
    where = f"relaxation {relaxation}: option {name}"
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return text in ("true", "yes", "on", "1")
        raise UsageError(f"{where}: expected true/false, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{where}: expected a number, got {value!r}")
    try:
        number = parse_number(str(value))
    except UsageError:
        raise UsageError(f"{where}: expected a finite number (e.g. 0.1 or 1/10), "
                         f"got {value!r}") from None
    if kind is int:
        if not number.is_integer():
            raise UsageError(f"{where}: expected an integer, got {value!r}")
        return int(number)
    return number
