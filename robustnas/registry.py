"""A tiny name -> factory registry with one discovery mechanism for every kind of component.

A component registers itself where it is defined, with ``@REGISTRY.register("name")`` (or
``REGISTRY.add``). A registry made with ``discover=`` finds those definitions itself: the
first time it is asked for a name it does not hold yet, or for its list of names, it imports
the modules its patterns name (:func:`discover_modules`). So a new component is a new file
in the package its registry discovers, and no import line anywhere registers it. These
registries discover their package:

==================  ==========================================  ===============================
registry            where                                       discovers
==================  ==========================================  ===============================
``SPACES``          :mod:`robustnas.space.spaces`               ``robustnas.space.*.space``
``MODEL_KINDS``     :mod:`robustnas.space.kinds`                each space's ``space`` module,
                                                                hand-crafted nets, ensembles
``REGULARIZERS``    :mod:`robustnas.search.regularizers.base`   ``robustnas.search.regularizers``
``RELAXATIONS``     :mod:`robustnas.space.relaxations.base`     ``robustnas.space.relaxations``
``OBJECTIVES``      :mod:`robustnas.train.objectives.base`      ``robustnas.train.objectives``
``ATTACKS``         :mod:`robustnas.attacks.base`               ``robustnas.attacks``
``DATASETS``        :mod:`robustnas.data.base`                  ``robustnas.data``
``BENCHMARKS``      :mod:`robustnas.tables.base`                ``robustnas.tables``
``PROXIES``         :mod:`robustnas.tables.zero_cost.base`      ``robustnas.tables.zero_cost``
``STRATEGIES``      :mod:`robustnas.tables.nas`                 ``robustnas.tables.
                                                                predictor_search``
``BENCHMARKS``      :mod:`robustnas.benchmarks`                 ``robustnas.cli.bench_options``
==================  ==========================================  ===============================

Registries whose entries are all defined in the registry's own module (genotypes, the
operations of a space, the table-search spaces) have nothing to discover.
``HANDCRAFTED`` (:mod:`robustnas.space.handcrafted.base`) discovers every module of
:mod:`robustnas.space.handcrafted` (one family each).

Discovery happens on lookup, never at import, so importing a registry costs only its own
module; but discovering imports *every* module of the package and each subpackage's
``__init__`` (names starting with ``_`` excepted). A package whose registry torch-free
commands consult (``robustnas.tables`` for ``robustnas table query``) therefore keeps
PyTorch imports inside its functions there.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from robustnas.errors import UsageError

T = TypeVar("T")


def discover_modules(pattern: str) -> None:
    """Import the modules ``pattern`` names: ``"pkg"`` every module of package ``pkg`` (or
    module ``pkg`` itself); ``"pkg.*.mod"`` module ``mod`` of every subpackage of ``pkg``
    that has one."""
    package_name, _, rest = pattern.partition(".*.")
    package = importlib.import_module(package_name)
    if not hasattr(package, "__path__"):  # a plain module: importing it was the point
        return
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        if not rest:
            importlib.import_module(f"{package_name}.{info.name}")
        elif info.ispkg and importlib.util.find_spec(f"{package_name}.{info.name}.{rest}"):
            importlib.import_module(f"{package_name}.{info.name}.{rest}")


class Registry(Generic[T]):
    """Maps names to objects (usually factories) of one kind, with helpful lookup errors.

    ``discover``: module patterns (see :func:`discover_modules`) imported on the first
    lookup, so that components register themselves by being files in the package.
    """

    def __init__(self, kind: str, discover: Sequence[str] = ()) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._discover = tuple(discover)
        self._discovered = not self._discover

    @property
    def patterns(self) -> tuple[str, ...]:
        """The module patterns this registry discovers (see :func:`discover_modules`)."""
        return self._discover

    def discover(self) -> None:
        """Import the modules of ``discover`` (once; a failing import is raised each time)."""
        if self._discovered:
            return
        self._discovered = True
        try:
            for pattern in self._discover:
                discover_modules(pattern)
        except BaseException:
            self._discovered = False
            raise

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``; a name can be taken only once."""

        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` without a decorator."""
        self.register(name)(obj)

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; raise :class:`UsageError` listing choices."""
        if name not in self._items:
            self.discover()
        try:
            return self._items[name]
        except KeyError:
            choices = ", ".join(sorted(self._items)) or "none registered"
            raise UsageError(f"unknown {self.kind} {name!r} (choose from: {choices})") from None

    def pop(self, name: str) -> T:
        """Remove and return the object registered as ``name`` (UsageError when absent)."""
        obj = self.get(name)
        del self._items[name]
        return obj

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        self.discover()
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self.discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self.discover()
        return iter(list(self._items))

    def __len__(self) -> int:
        self.discover()
        return len(self._items)
