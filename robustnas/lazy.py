"""Names of a package imported on first use (PEP 562), so that importing the package — and
``robustnas --help`` — does not import PyTorch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(namespace: dict[str, Any],
                 table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a package's ``globals()`` ``namespace``: a name of
    ``table`` (name -> defining module) is imported on first use and kept in the namespace,
    so it is found directly from then on."""

    def __getattr__(name: str) -> Any:
        if name in table:
            value = getattr(importlib.import_module(table[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")

    return __getattr__
