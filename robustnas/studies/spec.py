"""The study file: architecture sources, training and evaluation protocols, seeds.

A study is a YAML mapping::

    name: seed000_digits              # default: the file's stem
    out: runs/studies/seed000_digits  # study directory (default runs/studies/<name>)
    seeds: [0, 1, 2]                  # training seeds; each (architecture, seed) is a trial
    architectures:
      - DARTS_V2                      # named genotype, hand-crafted name or genotype JSON
      - arch: resnet18                # the same with a label and per-architecture options
        label: resnet18-w0.25
        set: {width: 0.25}            # RetrainConfig fields for this architecture only
      - random: 10                    # 10 distinct random DARTS cells (seeded)
        seed: 0
      - ensemble: [DARTS_V2, PDARTS, RACL]   # one jointly trained ensemble of listed members
        combine: features                    # or logits; init: default | cycled
      - ensemble: {random: 3, size: 3}       # 3 ensembles of 3 fresh random cells each
        seed: 1
      - search:                       # regulariser x search seed, searched then derived
          regularizers: [none, advrush, lipschitz]
          seeds: [0, 1, 2]
          config: ../configs/advrush_tiny.yaml   # relative to this file
          set: {epochs: 4}
      - sampler: tpe                  # random | tpe | nsga2: black-box NAS over the cell's
        trials: 20                    # choices, objectives clean and robust accuracy
        seed: 0
    training: {adversarial: none, epochs: 5, C: 8, layers: 5, dataset: digits, ...}
    evaluation: {attacks: clean,fgsm,pgd20, eps: [0.05, 0.1], n: 300}

``training`` holds :class:`robustnas.train.RetrainConfig` fields (not ``genotype``,
``seed`` or ``out``, which the runner sets per trial); ``evaluation`` the arguments of
:func:`robustnas.evaluation.evaluate` listed in :data:`EVALUATION_KEYS`. Further keys:
``heartbeat`` (seconds between a running trial's beats, 60), ``max_retry`` (retries of a
trial whose worker died, 3) and ``storage_patience`` (seconds a worker waits for a storage
that is away, e.g. a restarting server, before it stops: 600).

The file is validated completely when it is read:
:func:`robustnas.studies.validation.validate_trials` resolves every trial's settings (the
study's ``training`` with the architecture's own ``set``) and checks them against the
dataset (a cutout must be smaller than the image) before any trial starts; errors name the
study key (``training.cutout``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustnas.config import read_yaml, resolve_config
from robustnas.errors import UsageError

EVALUATION_KEYS = ("attacks", "eps", "n", "batch_size", "restarts", "sanity", "sanity_n",
                   "aa_steps", "aa_queries", "objective_eps", "measures", "measure_n")
SAMPLER_KINDS = ("random", "tpe", "nsga2")
_RESERVED_TRAINING = ("genotype", "seed", "out")


@dataclass
class ArchSource:
    """One entry of ``architectures``, before expansion into labelled architectures.

    ``kind`` is ``arch`` (a name or file), ``random``, ``ensemble``, ``search`` or
    ``sampler``; ``options`` holds the entry's own keys.
    """

    kind: str
    options: dict[str, Any]


@dataclass
class StudySpec:
    """A parsed, validated study file (see the module docstring for the layout)."""

    name: str
    out: Path
    base_dir: Path
    seeds: list[int]
    sources: list[ArchSource]
    training: dict[str, Any]
    evaluation: dict[str, Any]
    heartbeat: int = 60
    max_retry: int = 3
    storage_patience: int = 600
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def objective_eps(self) -> str:
        """The ε (as written) whose per-sample worst case is the robust objective."""
        chosen = self.evaluation.get("objective_eps")
        return str(chosen) if chosen is not None else self.eps_texts[-1]

    @property
    def eps_texts(self) -> list[str]:
        """The evaluation ε list as strings."""
        from robustnas.evaluation.loading import parse_eps_list

        return [text for _, text in parse_eps_list(self.evaluation["eps"])]


def load_study_spec(path: str | Path, out: str | Path | None = None) -> StudySpec:
    """Read and validate a study file; ``out`` overrides its ``out`` directory."""
    path = Path(path)
    data = read_yaml(path)
    return parse_study_spec(data, base_dir=path.resolve().parent, default_name=path.stem,
                            out=out, path=path)


def parse_study_spec(data: dict[str, Any], *, base_dir: Path, default_name: str = "study",
                     out: str | Path | None = None, path: Path | None = None) -> StudySpec:
    """Validate a study mapping (as read from YAML); relative paths are under ``base_dir``."""
    known = {"name", "out", "seeds", "architectures", "training", "evaluation", "heartbeat",
             "max_retry", "storage_patience", "description"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"study: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    name = str(data.get("name") or default_name)
    if not name or "/" in name:
        raise UsageError(f"study: name must be a non-empty string without '/', got {name!r}")
    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)):
        raise UsageError(f"study: seeds must be a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"study: seeds must be distinct, got {seeds}")
    training = _mapping(data.get("training", {}), "training")
    for key in _RESERVED_TRAINING:
        if key in training:
            raise UsageError(f"study: training.{key} is set per trial by the runner; remove it")
    _check_training(training)
    evaluation = _evaluation(_mapping(data.get("evaluation", {}), "evaluation"))
    raw_sources = data.get("architectures")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise UsageError("study: architectures must be a non-empty list")
    sources = [_source(item, i) for i, item in enumerate(raw_sources)]
    if sum(s.kind == "sampler" for s in sources) > 1:
        raise UsageError("study: at most one sampler source per study")
    out_dir = Path(out) if out is not None else Path(data.get("out") or f"runs/studies/{name}")
    heartbeat = _positive_int(data.get("heartbeat", 60), "heartbeat")
    max_retry = _positive_int(data.get("max_retry", 3), "max_retry", low=0)
    patience = _positive_int(data.get("storage_patience", 600), "storage_patience", low=0)
    spec = StudySpec(name=name, out=out_dir, base_dir=base_dir, seeds=list(seeds),
                     sources=sources, training=training, evaluation=evaluation,
                     heartbeat=heartbeat, max_retry=max_retry, storage_patience=patience,
                     path=path, raw=dict(data))
    if spec.objective_eps not in spec.eps_texts:
        raise UsageError(f"study: evaluation.objective_eps {spec.objective_eps!r} is not in "
                         f"the ε list {spec.eps_texts}")
    return spec


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"study: {name} must be a mapping, got {value!r}")
    return {str(k).replace("-", "_"): v for k, v in value.items()}


def _positive_int(value: Any, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"study: {name} must be an integer >= {low}, got {value!r}")
    return value


def _check_training(training: dict[str, Any]) -> None:
    """Reject unknown or invalid training options now rather than in the first trial."""
    from robustnas.train import RetrainConfig

    try:
        # no architecture yet: the space's own rules are checked per trial (validate_trials)
        config = resolve_config(RetrainConfig, None, dict(training))
        config.validate()
    except UsageError as exc:
        raise UsageError(f"study: training: {exc}") from None


def _evaluation(evaluation: dict[str, Any]) -> dict[str, Any]:
    from robustnas.attacks import parse_attack_list
    from robustnas.evaluation.loading import parse_eps_list

    unknown = sorted(set(evaluation) - set(EVALUATION_KEYS))
    if unknown:
        raise UsageError(f"study: unknown evaluation key {unknown[0]!r} "
                         f"(known: {', '.join(EVALUATION_KEYS)})")
    result = {"attacks": "clean,fgsm,pgd20", "eps": "8/255", "n": None, "batch_size": 256,
              "restarts": 1, "sanity": False, **evaluation}
    if isinstance(result["attacks"], list):
        result["attacks"] = ",".join(str(a) for a in result["attacks"])
    if isinstance(result["eps"], list):
        result["eps"] = ",".join(str(e) for e in result["eps"])
    parse_attack_list(result["attacks"])
    parse_eps_list(result["eps"])
    if result["n"] is not None:
        _positive_int(result["n"], "evaluation.n")
    return result


def _source(item: Any, index: int) -> ArchSource:
    where = f"architectures[{index}]"
    if isinstance(item, str):
        return ArchSource("arch", {"arch": item})
    if not isinstance(item, dict):
        raise UsageError(f"study: {where} must be a name or a mapping, got {item!r}")
    kinds = [k for k in ("arch", "random", "ensemble", "search", "sampler") if k in item]
    if len(kinds) != 1:
        raise UsageError(f"study: {where} needs exactly one of arch, random, ensemble, "
                         f"search, sampler (got {sorted(item)})")
    kind = kinds[0]
    allowed = {"arch": {"arch", "label", "set"},
               "random": {"random", "seed", "set", "prefix", "space"},
               "ensemble": {"ensemble", "label", "combine", "init", "seed", "set", "prefix"},
               "search": {"search", "set"},
               "sampler": {"sampler", "trials", "seed", "population", "startup", "set",
                           "space"}}[kind]
    extra = sorted(set(item) - allowed)
    if extra:
        raise UsageError(f"study: {where} ({kind}): unknown key {extra[0]!r} "
                         f"(known: {', '.join(sorted(allowed))})")
    options = dict(item)
    if "set" in options and not isinstance(options["set"], dict):
        raise UsageError(f"study: {where}: set must be a mapping of training options")
    if kind == "random":
        _positive_int(options["random"], f"{where}.random")
        from robustnas.space.spaces import DEFAULT_SPACE, check_space_name

        check_space_name(str(options.get("space", DEFAULT_SPACE)), f"study: {where}")
    if kind == "sampler":
        if options["sampler"] not in SAMPLER_KINDS:
            raise UsageError(f"study: {where}: sampler must be one of "
                             f"{', '.join(SAMPLER_KINDS)}, got {options['sampler']!r}")
        _positive_int(options.get("trials"), f"{where}.trials")
        from robustnas.space.spaces import DEFAULT_SPACE, check_space_name

        check_space_name(str(options.get("space", DEFAULT_SPACE)), f"study: {where}")
    if kind == "search" and not isinstance(options["search"], dict):
        raise UsageError(f"study: {where}: search must be a mapping (regularizers, seeds, "
                         "config, set)")
    if kind == "ensemble":
        value = options["ensemble"]
        if isinstance(value, list):
            if len(value) < 2:
                raise UsageError(f"study: {where}: an ensemble needs at least 2 members")
        elif isinstance(value, dict):
            _positive_int(value.get("random"), f"{where}.ensemble.random")
            _positive_int(value.get("size", 3), f"{where}.ensemble.size", low=2)
        else:
            raise UsageError(f"study: {where}: ensemble must be a list of members or "
                             "{random: N, size: K}")
    return ArchSource(kind, options)
