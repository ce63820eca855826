"""Model payloads: everything needed to rebuild a model from a checkpoint.

A payload is a plain dict (safe for ``torch.load(weights_only=True)``)::

    {"kind": "network" | "supernet" | "handcrafted" | "ensemble",
     "arch": {...constructor kwargs...},
     "genotype": {...genotype JSON...} (network only), "state_dict": {...}}
"""

from __future__ import annotations

from typing import Any

from torch import nn

from robustnas.errors import CheckpointError, RobustnasError
from robustnas.space.genotype import genotype_from_dict
from robustnas.space.network import Network
from robustnas.space.supernet import SuperNet


def model_payload(model: nn.Module) -> dict[str, Any]:
    """Describe ``model`` (a :class:`Network`, :class:`SuperNet`, hand-crafted network or
    ensemble, possibly DDP-wrapped)."""
    model = getattr(model, "module", model)
    if isinstance(model, Network):
        return {"kind": "network", "arch": dict(model.config),
                "genotype": model.genotype.to_dict(), "state_dict": model.state_dict()}
    if isinstance(model, SuperNet):
        return {"kind": "supernet", "arch": dict(model.config), "state_dict": model.state_dict()}
    if hasattr(model, "payload_arch"):  # hand-crafted networks, ensembles
        return {"kind": model.payload_kind, "arch": model.payload_arch(),
                "state_dict": model.state_dict()}
    raise TypeError(f"cannot describe a {type(model).__name__}")


def model_from_payload(payload: dict[str, Any], source: str = "checkpoint",
                       load_weights: bool = True) -> nn.Module:
    """Rebuild the model described by :func:`model_payload` (weights loaded by default).

    Architecture samplers of a supernet (e.g. log-normal) are not restored: the rebuilt
    supernet uses softmax(α), i.e. the distribution's mean behaviour, for evaluation.
    """
    try:
        kind = payload["kind"]
        arch = dict(payload["arch"])
        if kind == "network":
            model: nn.Module = Network(genotype_from_dict(payload["genotype"], source), **arch)
        elif kind == "supernet":
            model = SuperNet(**arch)
        elif str(kind).startswith("nb201-"):  # NAS-Bench-201 networks and supernets
            from robustnas.space.nb201.build import nb201_model_from_arch

            model = nb201_model_from_arch(kind, arch, source)
        else:  # hand-crafted networks and ensembles
            from robustnas.space.architecture import model_from_arch

            model = model_from_arch(kind, arch, source)
        if load_weights:
            state = {k: v for k, v in payload["state_dict"].items()
                     if not k.startswith("arch_sampler.")}
            model.load_state_dict(state, strict=True)
    except RobustnasError:
        raise
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else repr(exc)
        raise CheckpointError(
            f"{source}: not a valid robustnas model checkpoint ({first})") from None
    return model
