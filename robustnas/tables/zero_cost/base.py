"""The proxy registry and what every proxy shares.

A proxy is a function ``(model, x, y, num_classes) -> float`` of a network freshly built at
initialisation and one seeded batch (``x`` images in [0, 1], ``y`` labels). It may change
the model (its mode, its weights, its precision): the caller builds a new network for each
proxy, so that no proxy sees another's changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robustnas.errors import UsageError
from robustnas.registry import Registry

if TYPE_CHECKING:  # pragma: no cover - PyTorch is imported by the proxy modules only
    import torch
    from torch import nn

ProxyFn = Callable[["nn.Module", "torch.Tensor", "torch.Tensor", int], float]


@dataclass(frozen=True)
class Proxy:
    """One registered proxy: its function and what the README's table says about it."""

    name: str
    fn: ProxyFn
    paper: str
    measures: str
    #: Measurement settings (:class:`~robustnas.tables.proxies.ProxySettings` fields) the
    #: function takes as keywords, e.g. the Hessian's power iterations.
    options: tuple[str, ...] = ()


PROXIES: Registry[Proxy] = Registry("proxy", discover=("robustnas.tables.zero_cost",))

#: What ``correlate`` measures when no ``--proxies`` are given (the proxies of its first
#: version, so that older proxies files stay complete).
DEFAULT_PROXIES = ("jacobian_frobenius", "hessian_top_eigenvalue", "lipschitz_log10",
                   "params", "macs")


def register_proxy(name: str, paper: str, measures: str,
                   options: tuple[str, ...] = ()) -> Callable[[ProxyFn], ProxyFn]:
    """Decorator registering ``fn`` as proxy ``name`` (``options``: see :class:`Proxy`)."""

    def decorator(fn: ProxyFn) -> ProxyFn:
        PROXIES.add(name, Proxy(name, fn, paper, measures, tuple(options)))
        return fn

    return decorator


def proxy_names(spec: str | Sequence[str] | None = None) -> list[str]:
    """The proxies ``spec`` names: None the defaults, ``"all"`` every registered one, else a
    comma list (or sequence) of names, each checked against the registry."""
    if spec is None:
        return list(DEFAULT_PROXIES)
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if names == ["all"]:
        return PROXIES.names()
    if not names:
        raise UsageError("no proxies named (give 'all' or a comma list)")
    for name in names:
        PROXIES.get(name)  # one line listing the choices when unknown
    return list(dict.fromkeys(names))


def compute(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
            num_classes: int, **settings: Any) -> float:
    """Proxy ``name`` of ``model`` on ``(x, y)``; of ``settings`` it receives the ones it
    declares (:attr:`Proxy.options`), so every proxy can be called with all of them."""
    entry = PROXIES.get(name)
    chosen = {k: settings[k] for k in entry.options if k in settings}
    return float(entry.fn(model, x, y, num_classes, **chosen))


def weight_layers(model: nn.Module) -> Iterator[Any]:
    """The convolutions and linear layers: the weights the pruning-at-init proxies score
    (as in the references, which score ``nn.Conv2d`` and ``nn.Linear`` only)."""
    from torch import nn

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            yield module


def cross_entropy_backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Zero the gradients, then back-propagate the batch's mean cross-entropy."""
    import torch.nn.functional as F

    model.zero_grad()
    F.cross_entropy(model(x), y).backward()


def layer_sum(model: nn.Module, score: Callable[[Any], Any], needs_grad: bool = True) -> float:
    """Σ over :func:`weight_layers` of ``score(layer).sum()``; with ``needs_grad`` a layer
    without a gradient scores 0, as in the references."""
    import torch

    total = 0.0
    with torch.no_grad():  # scores are read, never differentiated
        for layer in weight_layers(model):
            if needs_grad and layer.weight.grad is None:
                continue
            total += float(score(layer).sum())
    return total
