"""Zero-cost proxies: scores of a network at initialisation, one module per proxy.

Each proxy module registers itself in :data:`~robustnas.tables.zero_cost.base.PROXIES`
(discovered on the first lookup, so a new proxy is a new file here). This ``__init__`` stays
free of PyTorch because the tables registry's discovery imports it.
"""

from robustnas.tables.zero_cost.base import PROXIES, Proxy, compute, proxy_names

__all__ = ["PROXIES", "Proxy", "compute", "proxy_names"]
