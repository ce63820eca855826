"""The DARTS search space (Liu et al., ICLR 2019): see :mod:`robustnas.space.darts.space`.

Modules, one concept each: :mod:`.ops` (the eight candidate operations), :mod:`.genotype`
(the two cells, JSON, validation), :mod:`.catalogue` (published genotypes: DARTS_V1/V2,
PDARTS, PC_DARTS, ADVRUSH, RACL, ...), :mod:`.supernet`, :mod:`.network`, :mod:`.common`
(stem, preprocessing, reduction positions), :mod:`.sampler`, :mod:`.suggest`, :mod:`.info`.
"""
