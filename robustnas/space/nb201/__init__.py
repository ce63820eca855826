"""The NAS-Bench-201 search space (Dong & Yang, ICLR 2020).

One cell type with input node 0 and nodes 1-3; every node sums all its incoming edges (6 edges,
5 candidate operations each, 15,625 cells); the network stacks 3 stages of N cells separated
by residual blocks. Modules, one concept each:

- :mod:`.ops`: the five candidate operations,
- :mod:`.genotype`: the cell (standard ``|op~0|+|op~0|op~1|+...`` string, JSON, validation),
- :mod:`.sampler`: enumeration of the 15,625 cells,
- :mod:`.cell`, :mod:`.blocks`, :mod:`.network`: the discrete network (NAS-Bench-201 layout),
- :mod:`.picture`: the 4-node cell picture,
- :mod:`.info`: parameters and MACs.
"""

from typing import Any

from robustnas.space.nb201.genotype import (
    EDGES,
    NB201_OPS,
    NB201Genotype,
    load_nb201_genotype,
    nb201_genotype_from_dict,
)


def __getattr__(name: str) -> Any:
    # The network needs PyTorch; cells, strings and tables do not, so it loads on first use.
    if name == "NB201Network":
        from robustnas.space.nb201.network import NB201Network

        return NB201Network
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EDGES", "NB201Genotype", "NB201Network", "NB201_OPS", "load_nb201_genotype",
           "nb201_genotype_from_dict"]
