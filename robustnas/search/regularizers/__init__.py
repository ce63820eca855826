"""Robustness regularisers for the architecture step, registered by name.

Importing this package imports every regulariser module in it, so adding one is adding
a file.
"""

import importlib
import pkgutil

from robustnas.search.regularizers.base import (
    REGULARIZERS,
    NoRegularizer,
    Regularizer,
    StepContext,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGULARIZERS", "NoRegularizer", "Regularizer", "StepContext"]
