"""Model payloads: everything needed to rebuild a model from a checkpoint, by kind.

A payload is a plain dict (safe for ``torch.load(weights_only=True)``)::

    {"kind": "<kind>", "arch": {...constructor kwargs...}, ...kind's fields...,
     "state_dict": {...}}

Every robustnas model class names its kind (``payload_kind``); :data:`MODEL_KINDS` maps the
kind to a :class:`~robustnas.space.protocol.ModelKind` that describes and rebuilds it.
Spaces register their kinds when they register (``SearchSpace.model_kinds``); hand-crafted
networks and ensembles register theirs in their own modules. The front door that builds
models from any spec is :mod:`robustnas.space.models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from robustnas.errors import CheckpointError, RobustnasError
from robustnas.registry import Registry
from robustnas.space.protocol import ModelKind

#: Kinds by name. Found on first lookup: every space's (``robustnas/space/<name>/space.py``),
#: the hand-crafted networks' and the ensembles'.
MODEL_KINDS: Registry[ModelKind] = Registry("model kind", discover=(
    "robustnas.space.*.space", "robustnas.space.handcrafted", "robustnas.space.ensemble"))


def model_payload(model: nn.Module) -> dict[str, Any]:
    """Describe ``model`` (possibly DDP-wrapped) as a payload with its weights."""
    model = getattr(model, "module", model)
    kind = getattr(model, "payload_kind", None)
    if not isinstance(kind, str) or kind not in MODEL_KINDS:
        raise TypeError(f"cannot describe a {type(model).__name__} (no registered payload_kind)")
    describe = MODEL_KINDS.get(kind).describe
    payload = (describe(model) if describe is not None
               else {"kind": kind, "arch": model.payload_arch()})  # type: ignore[operator]
    return {**payload, "state_dict": model.state_dict()}


def rebuild(payload: Mapping[str, Any], source: str = "checkpoint",
            load_weights: bool = True) -> nn.Module:
    """Rebuild the model a payload describes (weights loaded by default); the kinds must be
    found (see :data:`MODEL_KINDS`).

    Architecture samplers that a regulariser installed on a supernet (e.g. log-normal) are
    not restored: the rebuilt supernet uses softmax(α), i.e. the distribution's mean
    behaviour, for evaluation. The sampler of the supernet's relaxation (PC-DARTS' β) is
    part of the architecture the payload names, and is restored.
    """
    try:
        kind = payload["kind"]
        if kind not in MODEL_KINDS:
            raise CheckpointError(f"{source}: unknown model kind {kind!r} (known: "
                                  f"{', '.join(MODEL_KINDS.names())})")
        dict(payload["arch"])  # a payload without its architecture is no payload
        model = MODEL_KINDS.get(kind).rebuild(payload, source)
        if load_weights:
            expected = model.state_dict()
            state = {k: v for k, v in payload["state_dict"].items()
                     if not k.startswith("arch_sampler.") or k in expected}
            model.load_state_dict(state, strict=True)
    except RobustnasError:
        raise
    except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else repr(exc)
        raise CheckpointError(
            f"{source}: not a valid robustnas model checkpoint ({first})") from None
    return model
