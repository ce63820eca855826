"""What a study runs: one task per search job and per (architecture, training seed), each
with its key, its protocol fingerprint and the attributes its trials carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from robustnas.studies.protocol import architecture_doc, fingerprint, search_doc, training_doc
from robustnas.studies.sources import Expanded
from robustnas.studies.spec import StudySpec


@dataclass
class Task:
    """One unit of a study: a search job or an (architecture, seed) training trial."""

    key: str
    search: bool
    protocol: str
    attrs: dict[str, Any]


def build_tasks(spec: StudySpec, expanded: Expanded
                ) -> tuple[dict[str, Task], dict[str, dict[str, Any]]]:
    """``(tasks by key, each architecture's protocol document)``; searches first, then the
    training trials seed-major (a study stopped half-way has every architecture with the
    first seeds)."""
    tasks: dict[str, Task] = {}
    search_protocols = {}
    for job in expanded.searches:
        protocol = fingerprint(search_doc(job.config))
        search_protocols[job.label] = protocol
        tasks[job.label] = Task(job.label, True, protocol, {
            "key": job.label, "protocol": protocol, "job": {
                "label": job.label, "regularizer": job.regularizer, "seed": job.seed,
                "config": job.config}})
    arch_docs = {a.label: architecture_doc(a, search_protocols) for a in expanded.architectures}
    for seed in spec.seeds:
        for arch in expanded.architectures:
            key = f"{arch.label}@{seed}"
            protocol = fingerprint(training_doc(spec.training, spec.evaluation,
                                                arch_docs[arch.label]))
            tasks[key] = Task(key, False, protocol, {
                "key": key, "arch": arch.to_attrs(), "seed": seed, "kind": arch.kind,
                "protocol": protocol})
    return tasks, arch_docs


def protocol_document(spec: StudySpec, expanded: Expanded,
                      arch_docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The study's readable protocol (kept in the storage, to name what an edit changed)."""
    return {"training": spec.training, "evaluation": spec.evaluation,
            "architectures": arch_docs,
            "searches": {j.label: search_doc(j.config)["search"] for j in expanded.searches},
            "sampler": expanded.sampler}


def task_attrs(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The attributes that define a trial's task (what a retry copy carries)."""
    return {k: v for k, v in t.user_attrs.items()
            if k in ("key", "arch", "seed", "kind", "job", "protocol", "round")}
