"""Hand-crafted CIFAR baselines, usable by name wherever a genotype name is accepted.

Names (case-insensitive; ``_`` and ``-`` are interchangeable): ``resnet18``, ``resnet50``,
``preact-resnet18``, ``vgg16-bn``, ``densenet121``, ``mobilenetv2``, ``wrn-28-10``,
``wrn-34-10`` and any ``wrn-<depth>-<widen>``. A width multiplier for small runs follows an
``@``: ``resnet18@0.25`` scales every layer's channel count by 0.25 (rounded).

Each family is one module that registers its factories in :data:`HANDCRAFTED` (found by
the registry: a new family is a new module).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from robustnas.errors import UsageError
from robustnas.space.handcrafted.base import HANDCRAFTED, HandcraftedNet
from robustnas.space.handcrafted.wideresnet import parse_wrn, wide_resnet
from robustnas.space.kinds import MODEL_KINDS
from robustnas.space.protocol import ModelKind

__all__ = ["HANDCRAFTED", "HandcraftedNet", "build_handcrafted", "handcrafted_names",
           "is_handcrafted", "parse_handcrafted"]


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _lookup(name: str) -> str | None:
    """The registered name ``name`` denotes (``ResNet-18`` -> ``resnet18``), or None."""
    key = _key(name)
    if parse_wrn(key) is not None:
        depth, widen = parse_wrn(key)
        return f"wrn-{depth}-{widen}"
    squashed = key.replace("-", "")
    for registered in HANDCRAFTED.names():
        if registered.replace("-", "") == squashed:
            return registered
    return None


def parse_handcrafted(spec: str) -> tuple[str, float] | None:
    """``(name, width)`` for a hand-crafted spec such as ``resnet18@0.25``, or None when
    ``spec`` is not a hand-crafted name. A malformed width raises :class:`UsageError`."""
    base, sep, width_text = str(spec).partition("@")
    name = _lookup(base)
    if name is None:
        return None
    width = 1.0
    if sep:
        try:
            width = float(width_text)
        except ValueError:
            raise UsageError(f"{spec!r}: the width after '@' must be a number such as 0.25") \
                from None
        if not 0 < width <= 16:
            raise UsageError(f"{spec!r}: the width multiplier must be in (0, 16], got {width:g}")
    return name, width


def is_handcrafted(spec: str) -> bool:
    """Whether ``spec`` names a hand-crafted network (with or without ``@width``)."""
    return _lookup(str(spec).partition("@")[0]) is not None


def handcrafted_names() -> list[str]:
    """The registered names (``wrn-<depth>-<widen>`` is accepted besides these)."""
    return HANDCRAFTED.names()


def build_handcrafted(spec: str, *, num_classes: int = 10, in_channels: int = 3,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      width: float | None = None) -> HandcraftedNet:
    """Build the network named by ``spec`` (``width`` overrides an ``@width`` suffix)."""
    parsed = parse_handcrafted(spec)
    if parsed is None:
        raise UsageError(f"unknown hand-crafted architecture {spec!r} (choose from: "
                         f"{', '.join(HANDCRAFTED.names())}, wrn-<depth>-<widen>)")
    name, spec_width = parsed
    if name in HANDCRAFTED:
        factory = HANDCRAFTED.get(name)
    else:
        factory = wide_resnet(*parse_wrn(name))
    return factory(width=spec_width if width is None else float(width),
                   num_classes=num_classes, in_channels=in_channels, mean=mean, std=std)


def _rebuild(payload: Any, source: str) -> HandcraftedNet:
    args = dict(payload["arch"])
    name = args.pop("name")
    return build_handcrafted(str(name), **args)


MODEL_KINDS.add("handcrafted", ModelKind("handcrafted", _rebuild))
