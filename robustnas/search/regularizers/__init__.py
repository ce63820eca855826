"""Robustness regularisers for the architecture step, registered by name.

Each module of this package registers its regularisers in ``REGULARIZERS``, which imports
the modules on its first lookup (:class:`robustnas.registry.Registry` ``discover=``), so
adding one is adding a file.
"""

from robustnas.search.regularizers.base import (
    REGULARIZERS,
    NoRegularizer,
    PerturbContext,
    Regularizer,
    StepContext,
)

__all__ = ["REGULARIZERS", "NoRegularizer", "PerturbContext", "Regularizer", "StepContext"]
