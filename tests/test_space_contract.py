"""The space protocol as a contract: a toy space defined here, in test code only, goes through
search -> derive -> retrain -> retrain --resume -> sample -> info -> a study with a sampler
source -> evaluate, and the capabilities it lacks are refused in one line.

The toy ``chain`` space: 3 nodes in a row after a stem, one operation per edge out of
``conv_3x3``, ``skip`` and ``avg_pool`` (27 architectures); its string form is
``chain:conv_3x3,skip,avg_pool``. Nothing in the package is edited to add it: one
``register_space`` line does.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from robustnas.errors import GenotypeError, UsageError
from robustnas.space.decisiveness import CellDecisiveness, Decisiveness
from robustnas.space.normalize import Normalize, channel_stats
from robustnas.space.protocol import (
    LIPSCHITZ_BOUND,
    LIPSCHITZ_REGULARIZER,
    SUPERNET,
    ModelKind,
    SearchSpace,
)
from robustnas.space.spaces import register_space, unregister_space

OPS = ("conv_3x3", "skip", "avg_pool")
FORMAT = "chain-genotype"
TINY = dict(dataset="digits", C=4, layers=1, seed=0)


@dataclass(frozen=True)
class ChainGenotype:
    ops: tuple[str, ...]
    provenance: dict = field(default_factory=dict, compare=False, hash=False)
    space = "chain"

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "ops": list(self.ops), "provenance": dict(self.provenance)}

    def describe(self) -> str:
        return "chain:" + ",".join(self.ops)

    def count(self, op: str, cell: str = "cell") -> int:
        return sum(o == op for o in self.ops)


def _parse(ops: Any, source: str) -> tuple[str, ...]:
    ops = tuple(ops)
    if len(ops) != 3 or any(op not in OPS for op in ops):
        raise GenotypeError(f"{source}: a chain genotype is 3 of {', '.join(OPS)}, got {ops}")
    return ops


def _op(name: str, C: int) -> nn.Module:
    if name == "conv_3x3":
        return nn.Sequential(nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C),
                             nn.ReLU())
    if name == "avg_pool":
        return nn.AvgPool2d(3, 1, 1)
    return nn.Identity()


class _Base(nn.Module):
    space = "chain"

    def __init__(self, C: int, num_classes: int, in_channels: int, mean: Any, std: Any) -> None:
        super().__init__()
        mean, std = channel_stats(in_channels, mean, std)
        self.config = dict(C=C, num_classes=num_classes, in_channels=in_channels,
                           mean=list(mean), std=list(std))
        self.normalize = Normalize(mean, std)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C, num_classes)

    def payload_arch(self) -> dict[str, Any]:
        return dict(self.config)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(h).flatten(1))


class ChainNetwork(_Base):
    payload_kind = "chain-network"

    def __init__(self, genotype: ChainGenotype, C: int = 4, num_classes: int = 10,
                 in_channels: int = 3, mean: Any = None, std: Any = None) -> None:
        super().__init__(C, num_classes, in_channels, mean, std)
        self.genotype = genotype
        self.nodes = nn.ModuleList(_op(op, C) for op in genotype.ops)

    def payload_arch(self) -> dict[str, Any]:
        return {**self.config, "genotype": self.genotype.to_dict()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(self.normalize(x))
        for node in self.nodes:
            h = node(h)
        return self.head(h)


class ChainSuperNet(_Base):
    payload_kind = "chain-supernet"
    primitives = OPS

    def __init__(self, C: int = 4, num_classes: int = 10, in_channels: int = 3,
                 mean: Any = None, std: Any = None) -> None:
        super().__init__(C, num_classes, in_channels, mean, std)
        self.edges = nn.ModuleList(nn.ModuleList(_op(op, C) for op in OPS) for _ in range(3))
        self.alpha = nn.Parameter(1e-3 * torch.randn(3, len(OPS)))
        self.arch_sampler: Any = None

    def named_weights(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if n != "alpha"]

    def weights(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_weights()]

    def named_arch_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [("alpha", self.alpha)]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def set_arch_sampler(self, sampler: Any) -> None:
        self.arch_sampler = sampler

    def alpha_softmax(self) -> dict[str, torch.Tensor]:
        return {"cell": torch.softmax(self.alpha.detach(), dim=-1).cpu()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.alpha, dim=-1)
        h = self.stem(self.normalize(x))
        for k, ops in enumerate(self.edges):
            h = sum(w[k, o] * op(h) for o, op in enumerate(ops))
        return self.head(h)

    def genotype(self, provenance: dict | None = None) -> ChainGenotype:
        return ChainGenotype(tuple(OPS[int(i)] for i in self.alpha.argmax(dim=1)),
                             dict(provenance or {}))

    def decisiveness(self) -> Decisiveness:
        p = self.alpha_softmax()["cell"].double()
        k = p.shape[1]
        top2 = p.topk(2, dim=1).values
        ent = -(p * p.log()).sum(dim=1) / torch.log(torch.tensor(float(k)))
        return Decisiveness({"cell": CellDecisiveness(
            float(ent.mean()), [float(a - b) * k for a, b in top2.tolist()], [])}, k)


class ChainSpace(SearchSpace):
    name = "chain"
    genotype_format = FORMAT
    capabilities = frozenset({SUPERNET})
    instead = {LIPSCHITZ_REGULARIZER: "use --regularizer advrush",
               LIPSCHITZ_BOUND: "leave lipschitz out of the measures"}
    size = len(OPS) ** 3
    network_sizes = (4, 1)

    def recognises(self, text: str) -> bool:
        return text.startswith("chain:")

    def load(self, spec: Any) -> ChainGenotype:
        if isinstance(spec, ChainGenotype):
            return spec
        text = str(spec)
        if text.startswith("chain:"):
            return ChainGenotype(_parse(text[len("chain:"):].split(","), text))
        from robustnas.space.genotype_file import read_genotype_json

        return self.from_dict(read_genotype_json(text), text)

    def from_dict(self, data: Any, source: str = "genotype") -> ChainGenotype:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise GenotypeError(f"{source}: not a chain genotype")
        return ChainGenotype(_parse(data["ops"], source), dict(data.get("provenance", {})))

    def network(self, genotype: Any, *, C: int, layers: int, num_classes: int,
                in_channels: int, mean: Any, std: Any, auxiliary: bool = False) -> nn.Module:
        return ChainNetwork(genotype, C=C, num_classes=num_classes, in_channels=in_channels,
                            mean=mean, std=std)

    def supernet(self, *, C: int, layers: int, num_classes: int, in_channels: int,
                 mean: Any, std: Any, steps: int = 4) -> nn.Module:
        return ChainSuperNet(C=C, num_classes=num_classes, in_channels=in_channels,
                             mean=mean, std=std)

    def model_kinds(self) -> list[ModelKind]:
        def network(payload: Any, source: str) -> nn.Module:
            arch = dict(payload["arch"])
            return ChainNetwork(self.from_dict(arch.pop("genotype"), source), **arch)

        return [ModelKind("chain-network", network),
                ModelKind("chain-supernet", lambda p, s: ChainSuperNet(**dict(p["arch"])))]

    def draw(self, rng: random.Random, provenance: dict[str, Any]) -> ChainGenotype:
        return ChainGenotype(tuple(rng.choice(OPS) for _ in range(3)), provenance)

    def suggest(self, trial: Any, provenance: dict[str, Any] | None = None) -> ChainGenotype:
        return ChainGenotype(tuple(trial.suggest_categorical(f"node{k}", list(OPS))
                                   for k in range(3)), dict(provenance or {}))


class FixedSpace(ChainSpace):
    """The chain space without a supernet (as NARes: sampled or looked up, never searched)."""

    name = "chain-fixed"
    capabilities = frozenset()
    instead = {SUPERNET: "sample it (robustnas sample) or use a study sampler source"}

    def model_kinds(self) -> list[ModelKind]:
        return []  # its networks are the chain space's


@pytest.fixture(scope="module")
def chain():
    register_space(ChainSpace())
    register_space(FixedSpace())
    yield "chain"
    unregister_space("chain")
    unregister_space("chain-fixed")


def test_a_space_that_breaks_the_protocol_is_refused_when_it_registers():
    class Incomplete(SearchSpace):
        name = "broken"
        genotype_format = "broken"

    with pytest.raises(TypeError):
        register_space(Incomplete())  # abstract methods: cannot even be built

    class Lying(ChainSpace):
        name = "lying"
        capabilities = frozenset({SUPERNET})
        supernet = SearchSpace.supernet  # declares a supernet, defines none

    with pytest.raises(TypeError, match="declares a supernet"):
        register_space(Lying())


def test_search_derive_retrain_resume_sample_info_evaluate(chain, tmp_path, capsys):
    from robustnas.cli import main
    from robustnas.evaluation import evaluate
    from robustnas.search import run_search
    from robustnas.space.spaces import spec_space
    from robustnas.train import retrain

    result = run_search(overrides=dict(space="chain", epochs=1, batch_size=16,
                                       max_steps_per_epoch=2, out=str(tmp_path / "search"),
                                       **TINY), show_progress=False)
    assert isinstance(result.genotype, ChainGenotype)
    saved = json.loads(result.genotype_path.read_text())
    assert saved["format"] == FORMAT and saved["provenance"]["decisiveness"]
    assert spec_space(result.genotype_path) == "chain"

    derived = tmp_path / "derived.json"
    assert main(["derive", str(tmp_path / "search"), "-o", str(derived)]) == 0
    assert ChainSpace().load(str(derived)) == result.genotype

    common = dict(dataset="digits", batch_size=32, C=4, layers=1, cutout=0,
                  out=str(tmp_path / "retrain"), eval_n=32, val_n=32, seed=0)
    retrain(overrides=dict(genotype=str(derived), epochs=1, **common), show_progress=False)
    # Resume with the genotype named again: it is the checkpoint's, so it is accepted ...
    retrain(overrides=dict(genotype=str(derived), epochs=1, **common), resume=True,
            show_progress=False)
    ckpt = torch.load(tmp_path / "retrain" / "last.pt", weights_only=True)
    assert ckpt["model"]["kind"] == "chain-network" and ckpt["epoch"] == 1
    # ... and another cell is refused in one line.
    other = "chain:" + ",".join(op for op in reversed(result.genotype.ops))
    if ChainSpace().load(other) != result.genotype:
        with pytest.raises(UsageError, match="differs"):
            retrain(overrides=dict(genotype=other, epochs=1, **common), resume=True,
                    show_progress=False)

    assert main(["sample", "--space", "chain", "--n", "5", "--seed", "1",
                 "--out", str(tmp_path / "samples")]) == 0
    files = sorted((tmp_path / "samples").glob("random_*.json"))
    assert len(files) == 5 and len({ChainSpace().load(str(f)) for f in files}) == 5
    assert spec_space(files[0]) == "chain"
    capsys.readouterr()
    assert main(["info", "chain:conv_3x3,skip,avg_pool", "--json", "--image-size", "8",
                 "--in-channels", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    # stem 1->4 conv + BN, one 4->4 conv + BN, classifier 4->10
    assert info["params"] == 36 + 8 + 144 + 8 + 50 and info["space"] == "chain"
    assert main(["info", "--spaces"]) == 0
    assert "chain:" in capsys.readouterr().out

    report = evaluate(str(tmp_path / "retrain" / "best.pt"), dataset="digits", n=16,
                      attacks="clean,fgsm", eps="2/255", sanity=False, progress=False,
                      measures=True, measure_n=4)
    text = json.dumps(report.to_dict())
    assert "fgsm" in text and "jacobian_frobenius" in text
    # the measures the space supports are measured; the bound it lacks says why in one line
    assert "space chain has no Lipschitz bound of its networks; leave lipschitz out" in text


def test_missing_capabilities_are_refused_in_one_line(chain, tmp_path):
    from robustnas.search import run_search
    from robustnas.space.spaces import get_space

    with pytest.raises(UsageError, match="space chain-fixed has no differentiable supernet; "
                                         "sample it"):
        run_search(overrides=dict(space="chain-fixed", epochs=1, out=str(tmp_path / "s"),
                                  **TINY), show_progress=False)
    assert not (tmp_path / "s").exists()
    with pytest.raises(UsageError, match="space chain has no Lipschitz composition.*advrush"):
        run_search(overrides=dict(space="chain", epochs=1, regularizer="lipschitz",
                                  out=str(tmp_path / "l"), **TINY), show_progress=False)
    from robustnas.evaluation.lipschitz import lipschitz_upper_bound

    net = get_space("chain").network(ChainGenotype(("skip",) * 3), C=4, layers=1,
                                     num_classes=10, in_channels=1, mean=None, std=None)
    with pytest.raises(UsageError, match="space chain has no Lipschitz bound"):
        lipschitz_upper_bound(net, (1, 8, 8))


def test_a_study_samples_the_toy_space(chain, tmp_path):
    import yaml

    from robustnas.studies import run_study

    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({
        "name": "toy", "out": str(tmp_path / "toy"), "seeds": [0],
        "architectures": [{"sampler": "random", "trials": 2, "space": "chain"},
                          {"random": 1, "space": "chain", "seed": 3}],
        "training": {"dataset": "digits", "device": "cpu", "C": 4, "layers": 1, "epochs": 1,
                     "batch_size": 64, "cutout": 0, "drop_path": 0, "auxiliary_weight": 0,
                     "eval_every": 0, "max_steps_per_epoch": 1},
        "evaluation": {"attacks": "clean,fgsm", "eps": [0.05], "n": 16}}))
    run = run_study(path, stream=open(tmp_path / "log.txt", "w"))  # noqa: SIM115
    assert run.complete
    results = sorted((tmp_path / "toy").rglob("result.json"))
    assert len(results) == 3
    genotypes = sorted((tmp_path / "toy" / "genotypes").glob("*.json"))
    assert genotypes and all(ChainSpace().owns(json.loads(g.read_text())) for g in genotypes)
