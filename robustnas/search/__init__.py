"""Bilevel differentiable architecture search.

Python API::

    from robustnas.search import SearchConfig, run_search
    result = run_search(SearchConfig(dataset="digits", epochs=6, C=8, layers=5,
                                     regularizer="advrush", out="runs/advrush"))
    result.genotype

Regularisers live in :mod:`robustnas.search.regularizers` (registry ``REGULARIZERS``; a new
one is a new module there); the loop is :class:`robustnas.search.searcher.Searcher`.
"""

from robustnas.search.api import run_search
from robustnas.search.config import SearchConfig
from robustnas.search.export import derive_from_checkpoint, export_genotype
from robustnas.search.result import SearchResult
from robustnas.search.searcher import SearchInterrupted

__all__ = ["SearchConfig", "SearchInterrupted", "SearchResult", "derive_from_checkpoint",
           "export_genotype", "run_search"]
