"""Bilevel differentiable architecture search.

Python API::

    from robustnas.search import SearchConfig, run_search
    result = run_search(SearchConfig(dataset="digits", epochs=6, C=8, layers=5,
                                     regularizer="advrush", out="runs/advrush"))
    result.genotype

Regularisers live in :mod:`robustnas.search.regularizers` (registry ``REGULARIZERS``; a new
one is a new module there); the loop is :class:`robustnas.search.searcher.Searcher`.

The names other than :class:`SearchConfig` are imported when first used, so that reading
the config (``robustnas search --help`` is generated from its fields) does not import
PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustnas.lazy import lazy_getattr
from robustnas.search.config import SearchConfig

if TYPE_CHECKING:  # pragma: no cover - what the lazy names are, for type checkers
    from robustnas.search.api import run_search
    from robustnas.search.export import derive_from_checkpoint, export_genotype
    from robustnas.search.result import SearchResult
    from robustnas.search.searcher import SearchInterrupted

#: Name -> the module that defines it (imported on first use: these need PyTorch).
_LAZY = {
    "run_search": "robustnas.search.api",
    "derive_from_checkpoint": "robustnas.search.export",
    "export_genotype": "robustnas.search.export",
    "SearchResult": "robustnas.search.result",
    "SearchInterrupted": "robustnas.search.searcher",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = ["SearchConfig", "SearchInterrupted", "SearchResult", "derive_from_checkpoint",
           "export_genotype", "run_search"]
