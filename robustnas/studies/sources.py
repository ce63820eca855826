"""Architecture sources of a study, expanded into labelled architectures.

Each architecture is trained once per training seed (one trial each). Random cells are
drawn with :func:`robustnas.space.sampling.sample_genotypes` and written to
``<study>/genotypes/`` (deterministic for the seed, so every worker writes the same files);
search sources become one search job per (relaxation, regulariser, search seed), whose derived
genotype ``<study>/searches/<label>/genotype.json`` is then trained like any other.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustnas.errors import UsageError
from robustnas.space.spaces import DEFAULT_SPACE
from robustnas.studies.spec import StudySpec

#: Label of the architecture of an Optuna-sampled trial: ``<sampler>-<trial number>``.
SAMPLED_KIND = "sampled"


@dataclass
class Architecture:
    """One architecture of a study.

    ``kind``: ``arch`` (a named genotype, hand-crafted name or genotype file), ``random``,
    ``ensemble``, ``search`` (derived from the search job of the same label) or ``sampled``.
    ``spec`` is what retraining receives as its architecture (a name or a file path);
    ``members`` the member specs of an ensemble; ``overrides`` extra training options.
    """

    label: str
    kind: str
    spec: str = ""
    members: list[str] = field(default_factory=list)
    combine: str = "features"
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_attrs(self) -> dict[str, Any]:
        """The JSON-ready record stored with each trial (Optuna user attributes)."""
        return {"label": self.label, "kind": self.kind, "spec": self.spec,
                "members": list(self.members), "combine": self.combine,
                "overrides": dict(self.overrides)}

    @classmethod
    def from_attrs(cls, data: dict[str, Any]) -> Architecture:
        """Inverse of :meth:`to_attrs`."""
        return cls(label=data["label"], kind=data["kind"], spec=data.get("spec", ""),
                   members=list(data.get("members", [])),
                   combine=data.get("combine", "features"),
                   overrides=dict(data.get("overrides", {})))


@dataclass
class SearchJob:
    """One search of a search source: regulariser, search seed and its SearchConfig fields."""

    label: str
    regularizer: str
    seed: int
    config: dict[str, Any]


@dataclass
class Expanded:
    """Everything a study runs: searches, the (architecture, seed) grid and the sampler."""

    architectures: list[Architecture]
    searches: list[SearchJob]
    sampler: dict[str, Any] | None


def expand_sources(spec: StudySpec, study_dir: Path) -> Expanded:
    """Expand ``spec``'s sources (writing random genotypes under ``study_dir/genotypes``)."""
    archs: list[Architecture] = []
    searches: list[SearchJob] = []
    sampler = None
    for index, source in enumerate(spec.sources):
        opts = source.options
        overrides = dict(opts.get("set") or {})
        if source.kind == "arch":
            text = _resolve_spec(str(opts["arch"]), spec.base_dir)
            label = str(opts.get("label") or _default_label(str(opts["arch"])))
            archs.append(Architecture(label, "arch", text, overrides=overrides))
        elif source.kind == "random":
            prefix = str(opts.get("prefix", "random"))
            paths = _random_cells(int(opts["random"]), int(opts.get("seed", 0)),
                                  study_dir / "genotypes", prefix,
                                  space=str(opts.get("space", DEFAULT_SPACE)))
            archs += [Architecture(p.stem, "random", str(p), overrides=overrides)
                      for p in paths]
        elif source.kind == "ensemble":
            archs += _ensembles(opts, overrides, spec.base_dir, study_dir, index)
        elif source.kind == "search":
            searches += _searches(opts["search"], spec, study_dir)
        else:
            sampler = dict(opts)
    for job in searches:
        path = study_dir / "searches" / job.label / "genotype.json"
        archs.append(Architecture(job.label, "search", str(path)))
    labels = [a.label for a in archs]
    for label in labels:
        if not label or not all(ch.isalnum() or ch in "._@+-=" for ch in label):
            raise UsageError(f"study: architecture label {label!r} may only hold letters, "
                             "digits and . _ @ + - = (it names the trial's directory)")
    duplicates = sorted({lab for lab in labels if labels.count(lab) > 1})
    if duplicates:
        raise UsageError(f"study: architecture label {duplicates[0]!r} is used twice; give "
                         "one of them a different label")
    return Expanded(archs, searches, sampler)


def _default_label(text: str) -> str:
    """A genotype file's stem, else the name itself (``resnet18@0.125``), with the characters
    a directory name may not hold turned into ``-`` (a NARes ``5,10,5,10,5,10`` is labelled
    ``5-10-5-10-5-10``)."""
    import re

    label = Path(text).stem if text.endswith(".json") else text
    return re.sub(r"[^A-Za-z0-9._@+=-]+", "-", label).strip("-") or "arch"


def _resolve_spec(text: str, base_dir: Path) -> str:
    """A genotype file relative to the study file, or a name checked against the registries."""
    candidate = base_dir / text
    if text.endswith(".json") or candidate.is_file():
        if not candidate.is_file() and not Path(text).is_file():
            raise UsageError(f"study: genotype file {text!r} not found (relative to "
                             f"{base_dir})")
        path = candidate if candidate.is_file() else Path(text)
        from robustnas.space.spaces import load_any_genotype

        load_any_genotype(str(path))  # a DARTS or another space's genotype file
        return str(path.resolve())
    check_architecture_name(text)
    return text


def check_architecture_name(text: str) -> None:
    """Raise a one-line error unless ``text`` names a genotype or a hand-crafted network."""
    from robustnas.space.models import is_handcrafted_spec
    from robustnas.space.spaces import load_any_genotype

    if not is_handcrafted_spec(text):
        load_any_genotype(text)  # a genotype of any space (GenotypeError in one line)


def _random_cells(n: int, seed: int, folder: Path, prefix: str,
                  space: str = DEFAULT_SPACE) -> list[Path]:
    from robustnas.space.sampling import sample_genotypes
    from robustnas.space.spaces import get_space

    save = get_space(space).save
    paths = []
    for i, geno in enumerate(sample_genotypes(n, seed=seed, space=space)):
        path = folder / f"{prefix}-s{seed}-{i:03d}.json"
        if not path.is_file():  # deterministic: every worker would write the same file
            folder.mkdir(parents=True, exist_ok=True)
            save(geno, path)
        paths.append(path)
    return paths


def _ensembles(opts: dict[str, Any], overrides: dict[str, Any], base_dir: Path,
               study_dir: Path, index: int) -> list[Architecture]:
    combine = str(opts.get("combine", "features"))
    if "init" in opts:
        overrides = {**overrides, "ensemble_init": str(opts["init"])}
    value = opts["ensemble"]
    if isinstance(value, list):
        members = [_resolve_spec(str(m), base_dir) for m in value]
        label = str(opts.get("label") or "ens-" + "+".join(_default_label(str(m)) for m in value))
        return [Architecture(label, "ensemble", members=members, combine=combine,
                             overrides=overrides)]
    count, size = int(value["random"]), int(value.get("size", 3))
    seed = int(opts.get("seed", 0))
    prefix = str(opts.get("prefix", f"ens{size}"))
    paths = _random_cells(count * size, seed, study_dir / "genotypes", f"{prefix}-member")
    out = []
    for k in range(count):
        members = [str(p) for p in paths[k * size:(k + 1) * size]]
        out.append(Architecture(f"{prefix}-s{seed}-{k:03d}", "ensemble", members=members,
                                combine=combine, overrides=overrides))
    return out


def _searches(opts: dict[str, Any], spec: StudySpec, study_dir: Path) -> list[SearchJob]:
    from robustnas.config import read_yaml, resolve_config
    from robustnas.search import SearchConfig
    from robustnas.search.objective import RegularizerSet

    allowed = {"regularizers", "relaxations", "seeds", "config", "set"}
    extra = sorted(set(opts) - allowed)
    if extra:
        raise UsageError(f"study: search: unknown key {extra[0]!r} "
                         f"(known: {', '.join(sorted(allowed))})")
    regs = opts.get("regularizers", ["none"])
    regs = [regs] if isinstance(regs, str) else list(regs)
    # None: the relaxation of the config (DARTS' softmax unless it sets one), labels as
    # before relaxations were a study dimension
    relaxations = opts.get("relaxations", [None])
    relaxations = [relaxations] if isinstance(relaxations, str) else list(relaxations)
    seeds = opts.get("seeds", [0])
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    configs = opts.get("config")
    jobs = []
    for relaxation, reg in itertools.product(relaxations, regs):
        file = configs.get(reg) if isinstance(configs, dict) else configs
        base: dict[str, Any] = {k: spec.training[k] for k in ("dataset", "data_root",
                                                              "dataset_options", "device")
                                if k in spec.training}
        if file:
            path = spec.base_dir / str(file)
            if not path.is_file():
                raise UsageError(f"study: search config {file!r} not found (relative to "
                                 f"{spec.base_dir})")
            base.update(read_yaml(path))
        base.update(opts.get("set") or {})
        if relaxation is not None:
            base["relaxation"] = str(relaxation)
        prefix = "search-" if relaxation is None else f"search-{relaxation}-"
        for seed in seeds:
            label = f"{prefix}{str(reg).replace(':', '').replace(',', '+')}-s{seed}"
            config = {**base, "regularizer": str(reg), "seed": int(seed),
                      "out": str(study_dir / "searches" / label)}
            used = {part.split(":")[0].strip() for part in str(reg).split(",")}
            config["regularizer_options"] = {  # one shared `set` serves every regulariser
                k: v for k, v in dict(config.get("regularizer_options") or {}).items()
                if k in used}
            checked = resolve_config(SearchConfig, None, config)
            checked.validate()
            RegularizerSet(checked.regularizer, checked.regularizer_options).check_schedule(
                checked.epochs, checked.warmup_epochs)
            jobs.append(SearchJob(label, str(reg), int(seed), config))
    return jobs
