"""Ensembles as one differentiable model: K member networks, combined by averaging.

``combine``:

* ``"features"`` (the joint ensemble of "On Adversarial Robustness: A Neural Architecture Search
  perspective"): the members' last feature maps (before global
  pooling) are averaged, then one shared global pooling + linear classifier; the members'
  own classifiers are removed. Members must produce feature maps of one shape (e.g. DARTS
  networks of equal C and layers, or copies of one network).
* ``"logits"``: the members' logits are averaged.
* ``"probs"``: the members' softmax probabilities are averaged; ``forward`` returns their
  logarithm, so cross-entropy on it is the negative log-likelihood of the averaged
  probabilities and ``argmax`` is the averaged vote.

Gradients flow through every member, so an attack on an ensemble is white-box through all
of them. An ensemble is a model like any other: it trains with every objective, its
checkpoint payload (``kind: "ensemble"``) rebuilds it, and :func:`count_parameters` counts
all members plus the shared head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from robustnas.errors import UsageError
from robustnas.space.kinds import MODEL_KINDS, model_payload, rebuild
from robustnas.space.naming import describe_model
from robustnas.space.protocol import ModelKind

COMBINES = ("features", "logits", "probs")
#: Weight initialisations a member can be given (Devaguptapu et al. use the last three in
#: turn).
INITS = ("default", "kaiming-normal", "xavier-normal", "kaiming-uniform")
#: ``ensemble_init: cycled`` cycles through these, one per member (Devaguptapu et al.'s
#: scheme; ``seed000`` is its older spelling, still accepted).
CYCLED_INITS = ("kaiming-normal", "xavier-normal", "kaiming-uniform")
SEED000_INITS = CYCLED_INITS
#: Names of :data:`CYCLED_INITS` (the first documented).
CYCLED_NAMES = ("cycled", "seed000")


def member_features(member: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The member's last feature map before global pooling."""
    forward_features = getattr(member, "forward_features", None)
    if forward_features is None:
        raise UsageError(f"a {type(member).__name__} cannot join a feature-averaging ensemble "
                         "(it exposes no feature map); use combine 'logits'")
    return forward_features(x)


def initialise(module: nn.Module, scheme: str) -> None:
    """Re-initialise the weights of every convolution of ``module`` (biases to zero) with
    ``scheme``; ``"default"`` keeps PyTorch's initialisation. Linear layers (the shared
    classifier) keep theirs."""
    if scheme not in INITS:
        raise UsageError(f"unknown initialisation {scheme!r} (choose from: {', '.join(INITS)})")
    if scheme == "default":
        return
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            if scheme == "kaiming-normal":
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            elif scheme == "xavier-normal":
                nn.init.xavier_normal_(layer.weight)
            else:
                nn.init.kaiming_uniform_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def resolve_inits(spec: str | Sequence[str] | None, k: int) -> list[str]:
    """Per-member initialisations: ``"default"``, ``"cycled"`` (cycle kaiming-normal,
    xavier-normal, kaiming-uniform; ``"seed000"`` is the same), one scheme for all, or a
    comma list cycled over the members."""
    if spec is None or spec == "":
        return ["default"] * k
    if isinstance(spec, str):
        items = list(CYCLED_INITS) if spec.strip() in CYCLED_NAMES else [
            s.strip() for s in spec.split(",") if s.strip()]
    else:
        items = [str(s) for s in spec]
    for item in items:
        if item not in INITS:
            raise UsageError(f"unknown ensemble initialisation {item!r} (choose from: "
                             f"{', '.join(INITS)}, cycled)")
    return [items[i % len(items)] for i in range(k)]


class Ensemble(nn.Module):
    """``K`` members averaged as described in the module docstring."""

    payload_kind = "ensemble"

    def __init__(self, members: Sequence[nn.Module], combine: str = "features",
                 num_classes: int | None = None, inits: Sequence[str] | None = None) -> None:
        super().__init__()
        if len(members) < 2:
            raise UsageError(f"an ensemble needs at least 2 members, got {len(members)}")
        if combine not in COMBINES:
            raise UsageError(f"unknown ensemble combine {combine!r} "
                             f"(choose from: {', '.join(COMBINES)})")
        self.combine = combine
        self.members = nn.ModuleList(members)
        configs = [dict(getattr(m, "config", {}) or {}) for m in members]
        if num_classes is None:
            num_classes = configs[0].get("num_classes")
        self.inits = list(inits) if inits is not None else ["default"] * len(members)
        if len(self.inits) != len(members):
            raise UsageError(f"{len(self.inits)} initialisations for {len(members)} members")
        self.head: nn.Linear | None = None
        if combine == "features":
            widths = set()
            for m in members:
                classifier = getattr(m, "classifier", None)
                if not isinstance(classifier, nn.Linear) or not hasattr(m, "forward_features"):
                    raise UsageError(f"a {type(m).__name__} cannot join a feature-averaging "
                                     "ensemble; use --ensemble-combine logits")
                widths.add(classifier.in_features)
                m.classifier = nn.Identity()  # the shared head replaces it
            if len(widths) != 1:
                raise UsageError(f"feature averaging needs members with equal feature widths, "
                                 f"got {sorted(widths)} channels; use --ensemble-combine logits")
            if num_classes is None:
                raise UsageError("the ensemble's number of classes is unknown")
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(widths.pop(), int(num_classes))
        for member, scheme in zip(self.members, self.inits):
            initialise(member, scheme)
        self.config: dict[str, Any] = {"combine": combine, "members": len(members),
                                       "num_classes": num_classes,
                                       "in_channels": configs[0].get("in_channels")}

    # the trainer sets drop_path_prob on the model it trains: pass it to every member
    @property
    def drop_path_prob(self) -> float:
        return float(getattr(self.members[0], "drop_path_prob", 0.0))

    @drop_path_prob.setter
    def drop_path_prob(self, value: float) -> None:
        for member in self.members:
            member.drop_path_prob = value

    def check_input(self, in_channels: int, image_size: int) -> None:
        """Refuse members whose feature maps cannot be averaged on ``in_channels`` x
        ``image_size`` x ``image_size`` images (UsageError), by one forward pass on a dummy
        image. Equal widths (checked when built) do not mean equal maps: members that
        downsample differently disagree only on real input, so without this the mismatch
        would surface at the first training step, after the run directory was written."""
        if self.combine != "features":
            return
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()  # batch norm of one image: running statistics, not changed in eval mode
        try:
            with torch.no_grad():
                x = torch.zeros(1, in_channels, image_size, image_size, device=device)
                _check_shapes([member_features(m, x) for m in self.members])
        finally:
            self.train(was_training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.combine == "features":
            maps = [member_features(m, x) for m in self.members]
            _check_shapes(maps)
            mean = torch.stack(maps).mean(0)
            return self.head(self.global_pooling(mean).flatten(1))
        outs = [_logits(m(x)) for m in self.members]
        if self.combine == "logits":
            return torch.stack(outs).mean(0)
        probs = torch.stack([o.float().softmax(1) for o in outs]).mean(0)
        return probs.clamp_min(1e-12).log()

    def lipschitz_bound(self, bound: Callable[[nn.Module], float]) -> float:
        """Upper bound on the L2 Lipschitz constant of the logits (eval mode): the mean of
        the members' bounds (logits), or head × pooling × the mean of the members'
        feature-map bounds (features). ``probs`` (log of a mean of softmaxes) has none."""
        if self.combine == "probs":
            raise UsageError("Lipschitz bound: unsupported for a probability-averaging "
                             "ensemble (the log of averaged probabilities is unbounded)")
        if self.combine == "logits":
            return sum(_member_bound(m, bound, features=False) for m in self.members) \
                / len(self.members)
        feats = sum(_member_bound(m, bound, features=True) for m in self.members)
        return feats / len(self.members) * bound(self.global_pooling) * bound(self.head)

    def payload_arch(self) -> dict[str, Any]:
        """Constructor arguments, with each member described as a weightless payload."""
        members = []
        for m in self.members:
            payload = model_payload(m)
            payload.pop("state_dict")
            members.append(payload)
        return {"combine": self.combine, "num_classes": self.config["num_classes"],
                "inits": list(self.inits), "members": members}

    def describe(self) -> str:
        """``ensemble(features) of 3: DARTS_V2, DARTS_V2, resnet18@0.25``."""
        names = ", ".join(describe_model(m, short=True) for m in self.members)
        return f"ensemble({self.combine}) of {len(self.members)}: {names}"


def _member_bound(member: nn.Module, bound: Callable[[nn.Module], float],
                  features: bool) -> float:
    """Lipschitz bound of a member's feature map or logits, from the member's own
    ``lipschitz_features``/``lipschitz_bound`` (hand-crafted networks, networks of a space)."""
    method = getattr(member, "lipschitz_features" if features else "lipschitz_bound", None)
    if method is None:
        raise UsageError(f"Lipschitz bound: unsupported ensemble member "
                         f"{type(member).__name__}")
    return float(method(bound))


def _check_shapes(maps: Sequence[torch.Tensor]) -> None:
    """Feature maps of one shape per image, or a UsageError naming the shapes."""
    shapes = {tuple(f.shape[1:]) for f in maps}
    if len(shapes) != 1:
        raise UsageError(f"feature averaging needs equal feature-map shapes, got "
                         f"{sorted(shapes)}; use --ensemble-combine logits")


def _logits(out: Any) -> torch.Tensor:
    """Main logits of a member's output (drops an auxiliary head's in training mode)."""
    return out[0] if isinstance(out, (tuple, list)) else out


def check_ensemble_options(genotype: str, ensemble: Sequence[str], combine: str,
                           inits: str) -> None:
    """Validate a retraining config's ensemble options (UsageError on bad values)."""
    if not ensemble:
        return
    if genotype:
        raise UsageError(f"give either a genotype ({genotype!r}) or --ensemble, not both")
    members = parse_member_list(list(ensemble))
    if combine not in COMBINES:
        raise UsageError(f"unknown ensemble combine {combine!r} "
                         f"(choose from: {', '.join(COMBINES)})")
    resolve_inits(inits, len(members))


def parse_member_list(specs: str | Sequence[str]) -> list[str]:
    """``"A,B,C"`` or ``["A", "B"]`` -> member specs; ``"3xDARTS_V2"`` / ``"DARTS_V2*3"``
    repeat one member."""
    items = specs.split(",") if isinstance(specs, str) else [str(s) for s in specs]
    out: list[str] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        count, name = 1, item
        head, sep, tail = item.partition("x")
        if sep and head.isdigit() and tail:
            count, name = int(head), tail
        elif "*" in item:
            name, _, times = item.rpartition("*")
            if not times.strip().isdigit():
                raise UsageError(f"ensemble member {item!r}: expected NAME*K with an integer K")
            count = int(times)
        if count < 1:
            raise UsageError(f"ensemble member {item!r}: the repeat count must be at least 1")
        out.extend([name.strip()] * count)
    if len(out) < 2:
        raise UsageError(f"an ensemble needs at least 2 members, got {len(out)} "
                         f"({specs!r}); e.g. --ensemble DARTS_V2,DARTS_V2,DARTS_V2")
    return out


def _rebuild_ensemble(payload: Any, source: str) -> nn.Module:
    arch = payload["arch"]
    members = [rebuild(p, source, load_weights=False) for p in arch["members"]]
    return Ensemble(members, combine=arch["combine"], num_classes=arch.get("num_classes"),
                    inits=arch.get("inits"))


MODEL_KINDS.add("ensemble", ModelKind("ensemble", _rebuild_ensemble))
