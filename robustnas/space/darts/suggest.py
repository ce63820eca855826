"""The DARTS cell as Optuna parameters (study samplers).

For each cell (``normal``, ``reduce``) and intermediate node ``j`` (0..3) a trial suggests
``<cell>_n<j>_inputs``, one of the ``C(j + 2, 2)`` unordered pairs of distinct predecessors
(written ``"a,b"`` with ``a < b``), and ``<cell>_n<j>_op0`` / ``_op1``, the operations on the
edges from ``a`` and from ``b`` (7 choices each, ``none`` excluded). Random sampling over
these parameters is uniform over the DARTS space.
"""

from __future__ import annotations

import itertools
from typing import Any

from robustnas.space.darts.genotype import Genotype, make_genotype
from robustnas.space.darts.sampler import DARTS_OPS, DARTS_STEPS

OPS = DARTS_OPS
STEPS = DARTS_STEPS


def input_pairs(node: int) -> list[str]:
    """The unordered input pairs of intermediate node ``node`` as ``"a,b"`` strings."""
    return [f"{a},{b}" for a, b in itertools.combinations(range(node + 2), 2)]


def suggest_genotype(trial: Any, provenance: dict[str, Any] | None = None) -> Genotype:
    """Suggest one DARTS genotype through Optuna ``trial`` (see the module docstring)."""
    cells = {}
    for cell in ("normal", "reduce"):
        edges = []
        for node in range(STEPS):
            pair = trial.suggest_categorical(f"{cell}_n{node}_inputs", input_pairs(node))
            a, b = (int(v) for v in pair.split(","))
            edges.append((trial.suggest_categorical(f"{cell}_n{node}_op0", OPS), a))
            edges.append((trial.suggest_categorical(f"{cell}_n{node}_op1", OPS), b))
        cells[cell] = edges
    return make_genotype(cells["normal"], cells["reduce"], provenance=provenance)
