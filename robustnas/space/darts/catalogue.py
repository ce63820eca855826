"""Published genotypes, registered by name (transcribed from the papers' public results)."""

from __future__ import annotations

from pathlib import Path

from robustnas.errors import GenotypeError
from robustnas.registry import Registry
from robustnas.space.darts.genotype import Genotype, genotype_from_dict, make_genotype
from robustnas.space.genotype_file import read_genotype_json

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


def load_genotype(spec: str | Path) -> Genotype:
    """Load a genotype from a JSON file, or by name (``DARTS_V2``, ``ADVRUSH`` ...)."""
    name = str(spec)
    if name.upper() in GENOTYPES and not Path(name).exists():
        return GENOTYPES.get(name.upper())
    path = Path(spec)
    if not path.is_file():
        raise GenotypeError(unknown_genotype_message(name))
    return genotype_from_dict(read_genotype_json(path), source=str(path))


def unknown_genotype_message(name: str) -> str:
    """Why ``name`` is not a genotype: every named genotype and hand-crafted network (the
    commands that build networks take both), and the closest name when one is close."""
    import difflib

    from robustnas.space.handcrafted import handcrafted_names

    named, crafted = GENOTYPES.names(), handcrafted_names()
    # Compare case-insensitively: "darts_v2" and "ResNet18" are accepted spellings too.
    by_key = {n.lower(): n for n in [*named, *crafted]}
    close = difflib.get_close_matches(name.strip().lower(), list(by_key), n=1, cutoff=0.6)
    hint = f"; did you mean {by_key[close[0]]}?" if close else ""
    return (f"genotype {name!r} is neither a file, a named genotype ({', '.join(named)}) nor "
            f"a hand-crafted network ({', '.join(crafted)}, wrn-<depth>-<widen>){hint}")
