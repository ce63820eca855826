"""Published genotypes, registered by name (transcribed from the papers' public results)."""

from __future__ import annotations

from robustnas.registry import Registry
from robustnas.space.genotype import Genotype, make_genotype

GENOTYPES: Registry[Genotype] = Registry("genotype")

_SHORT = {
    "sep3": "sep_conv_3x3", "sep5": "sep_conv_5x5", "dil3": "dil_conv_3x3",
    "dil5": "dil_conv_5x5", "max3": "max_pool_3x3", "avg3": "avg_pool_3x3",
    "skip": "skip_connect",
}


def _cell(text: str) -> list[tuple[str, int]]:
    """Parse ``"sep3 1, skip 0, ..."`` into ``[("sep_conv_3x3", 1), ...]``."""
    edges = []
    for item in text.split(","):
        short, idx = item.split()
        edges.append((_SHORT[short], int(idx)))
    return edges


def _add(name: str, normal: str, reduce: str, source: str) -> None:
    GENOTYPES.add(name, make_genotype(_cell(normal), _cell(reduce),
                                      provenance={"name": name, "source": source}))


_add("DARTS_V1",
     "sep3 1, sep3 0, skip 0, sep3 1, skip 0, sep3 1, sep3 0, skip 2",
     "max3 0, max3 1, skip 2, max3 0, max3 0, skip 2, skip 2, avg3 0",
     "DARTS first order (Liu et al., ICLR 2019)")
_add("DARTS_V2",
     "sep3 0, sep3 1, sep3 0, sep3 1, sep3 1, skip 0, skip 0, dil3 2",
     "max3 0, max3 1, skip 2, max3 1, max3 0, skip 2, skip 2, max3 1",
     "DARTS second order (Liu et al., ICLR 2019)")
_add("PDARTS",
     "skip 0, dil3 1, skip 0, sep3 1, sep3 1, sep3 3, sep3 0, dil5 4",
     "avg3 0, sep5 1, sep3 0, dil5 2, max3 0, dil3 1, dil3 1, dil5 3",
     "P-DARTS (Chen et al., ICCV 2019)")
_add("PC_DARTS",
     "sep3 1, skip 0, sep3 0, dil3 1, sep5 0, sep3 1, avg3 0, dil3 1",
     "sep5 1, max3 0, sep5 1, sep5 2, sep3 0, sep3 3, sep3 1, sep3 2",
     "PC-DARTS (Xu et al., ICLR 2020)")
_add("ADVRUSH",
     "sep3 1, sep3 0, sep5 0, sep3 1, sep3 1, sep3 0, skip 0, sep3 1",
     "sep3 0, sep3 1, skip 0, dil3 2, skip 0, avg3 1, skip 0, skip 2",
     "AdvRush (Mok et al., ICCV 2021)")
_add("RACL",
     "sep3 0, sep3 1, sep5 0, skip 1, sep3 0, skip 3, sep3 3, skip 4",
     "sep3 0, sep5 1, avg3 0, dil3 1, sep3 0, sep5 1, sep3 2, dil3 3",
     "RACL / log-normal Lipschitz sampling (Dong et al., 2020)")
