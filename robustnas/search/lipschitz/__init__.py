"""Helpers of the log-normal Lipschitz method (RACL, seed 002): the α/β sampler, per-op
Lipschitz constants by power iteration, and the Fenton–Wilkinson network bound."""

from robustnas.search.lipschitz.constants import SupernetLipschitz
from robustnas.search.lipschitz.moments import (
    fenton_wilkinson,
    lognormal_sums,
    network_log_moments,
)
from robustnas.search.lipschitz.sampler import LogNormalArchSampler, LogNormalParams

__all__ = [
    "LogNormalArchSampler",
    "LogNormalParams",
    "SupernetLipschitz",
    "fenton_wilkinson",
    "lognormal_sums",
    "network_log_moments",
]
