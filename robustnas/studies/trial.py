"""The work of one trial: train an architecture with one seed and evaluate it, or search.

A training trial keeps everything in ``<study>/trials/<label>/seed<k>/``: the retraining
run (``last.pt``, ``best.pt``, ``config.yaml``, ``summary.json``, TensorBoard events), the
evaluation ``report.json``/``.md``, ``result.json`` (what the study table reads) and, unless
the study runs verbosely, ``trial.log`` with the run's terminal output. A retried trial
(its worker was killed) continues ``last.pt`` and reuses a finished evaluation, so no work
is done twice. The network evaluated is the final one (``last.pt``): ``best.pt`` is
selected on held-out test images and would bias a study's comparison.

Every record carries the fingerprint of its protocol (:mod:`robustnas.studies.protocol`).
A finished ``result.json`` of the same protocol is the trial's result (a trial whose
worker died after writing it is recorded from it, never run again); one of another
protocol (the study file changed and the change was accepted) is moved aside with its
whole run directory (``seed<k>.protocol-<fingerprint>``), so the new run starts clean.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from robustnas.errors import UsageError
from robustnas.io import atomic_write_text
from robustnas.studies.protocol import RESULT_FORMAT
from robustnas.studies.sources import Architecture, SearchJob
from robustnas.studies.spec import StudySpec

RESULT_NAME = "result.json"


def trial_dir(study_dir: Path, label: str, seed: int) -> Path:
    """Run directory of the trial training ``label`` with ``seed``."""
    return study_dir / "trials" / label / f"seed{seed}"


@contextlib.contextmanager
def quiet_output(run_dir: Path, verbose: bool) -> Iterator[None]:
    """Send the run's stdout/stderr to ``run_dir/trial.log`` unless ``verbose``."""
    if verbose:
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with open_log(run_dir / "trial.log") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield


def open_log(path: Path) -> Any:
    """Open ``path`` for appending, refusing a symbolic link: a link placed there would
    otherwise receive the trial's output wherever it points."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise UsageError(f"{path} is a symbolic link; remove it (the trial writes its "
                             "log there)") from None
        raise
    return os.fdopen(fd, "a", encoding="utf-8")


def result_of(path: Path, protocol: str | None) -> dict[str, Any] | None:
    """The finished record at ``path`` if it is of ``protocol`` (any, for ``None``)."""
    if not path.is_file() or path.is_symlink():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # half-written by a crash before the atomic rename: run again
    if not isinstance(record, dict):
        return None
    if protocol is not None and record.get("protocol") != protocol:
        return None
    return record


def set_aside(run_dir: Path, old_protocol: str) -> Path:
    """Move a run directory of another protocol out of the way (kept, never deleted)."""
    target = run_dir.with_name(f"{run_dir.name}.protocol-{old_protocol}")
    n = 1
    while target.exists():
        n += 1
        target = run_dir.with_name(f"{run_dir.name}.protocol-{old_protocol}-{n}")
    run_dir.rename(target)
    return target


PROTOCOL_NAME = "protocol.txt"


def _other_protocol(run_dir: Path, protocol: str | None) -> str | None:
    """The protocol of the (finished or half-done) run in ``run_dir`` when it is not
    ``protocol``; ``None`` when the folder is empty, absent or of this protocol. A run
    without a protocol marker predates fingerprints and counts as another protocol."""
    if protocol is None or not run_dir.is_dir() or not any(run_dir.iterdir()):
        return None
    marker = run_dir / PROTOCOL_NAME
    try:
        old = marker.read_text().strip() if marker.is_file() else "unknown"
    except OSError:
        old = "unknown"
    return None if old == protocol else old


def _start(run_dir: Path, protocol: str | None) -> None:
    """Set aside a run of another protocol, then mark the folder with this one."""
    old = _other_protocol(run_dir, protocol)
    if old is not None:
        set_aside(run_dir, old)
    if protocol is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / PROTOCOL_NAME, protocol + "\n")


def architecture_options(arch: Architecture) -> dict[str, Any]:
    """RetrainConfig fields that select ``arch``'s network."""
    if arch.kind == "ensemble":
        from robustnas.studies.ensembles import ensemble_options

        return ensemble_options(arch.members, arch.combine, arch.overrides.get("ensemble_init"))
    return {"genotype": arch.spec}


def run_training_trial(spec: StudySpec, study_dir: Path, arch: Architecture, seed: int, *,
                       protocol: str | None = None, verbose: bool = False) -> dict[str, Any]:
    """Train ``arch`` with ``seed``, evaluate it, write and return its ``result.json``
    (recorded with ``protocol``); a finished result of the same protocol is returned as
    it is."""
    run_dir = trial_dir(study_dir, arch.label, seed)
    done = run_dir / RESULT_NAME
    finished = result_of(done, protocol)
    if finished is not None:
        return finished
    _start(run_dir, protocol)
    with quiet_output(run_dir, verbose):
        result = _train_and_evaluate(spec, run_dir, arch, seed, verbose)
    result.update({"format": RESULT_FORMAT, "protocol": protocol})
    atomic_write_text(done, json.dumps(result, indent=2) + "\n")
    return result


def _train_and_evaluate(spec: StudySpec, run_dir: Path, arch: Architecture, seed: int,
                        verbose: bool) -> dict[str, Any]:
    from robustnas.evaluation import evaluate
    from robustnas.evaluation.report import Report
    from robustnas.train import retrain

    overrides = {**spec.training, **arch.overrides, **architecture_options(arch),
                 "seed": seed, "out": str(run_dir)}
    last = run_dir / "last.pt"
    trained = retrain(overrides=overrides, resume=last.is_file(), show_progress=verbose)
    report_path = run_dir / "report.json"
    ev = spec.evaluation
    if report_path.is_file():
        report = Report.from_dict(json.loads(report_path.read_text()))
    else:
        report = evaluate([str(trained.last_checkpoint)], attacks=ev["attacks"],
                          eps=ev["eps"], n=ev.get("n"), batch_size=ev.get("batch_size", 256),
                          device=str(overrides.get("device", "auto")), seed=seed,
                          restarts=ev.get("restarts", 1), sanity=ev.get("sanity", False),
                          sanity_n=ev.get("sanity_n", 200), measures=ev.get("measures", False),
                          measure_n=ev.get("measure_n", 100), aa_steps=ev.get("aa_steps"),
                          aa_queries=ev.get("aa_queries"), labels=[arch.label],
                          progress=verbose)
        report.save(report_path)
    model = report.models[0]
    return _result_record(spec, arch, seed, run_dir, model, trained)


def _result_record(spec: StudySpec, arch: Architecture, seed: int, run_dir: Path,
                   model: dict[str, Any], trained: Any) -> dict[str, Any]:
    rows = {}
    for r in model["rows"]:
        rows[r["eps_text"]] = {"eps": r["eps"], "attacks": dict(r["attacks"]),
                               "worst_case": r["worst_case"], "hrs": r["hrs"]}
    objective = rows[spec.objective_eps]
    return {"label": arch.label, "kind": arch.kind, "seed": seed, "run_dir": str(run_dir),
            "architecture": model.get("architecture"), "params": model["params"],
            "macs": _macs(trained.model, run_dir), "clean": model["clean"], "rows": rows,
            "robust": objective["worst_case"], "hrs": objective["hrs"],
            "objective_eps": spec.objective_eps, "n": model["n"],
            "classes": model.get("classes"),  # chance level of the plots: 100 / classes
            "epochs": trained.epochs_run, "members": list(arch.members)}


def _macs(model: Any, run_dir: Path) -> int | None:
    """Multiply-accumulates of one forward pass of one image (None if it cannot be counted)."""
    from robustnas.config import read_yaml
    from robustnas.data import load_dataset
    from robustnas.space.complexity import count_macs

    if model is None:
        return None
    cfg = read_yaml(run_dir / "config.yaml")
    data = load_dataset(cfg.get("dataset", "cifar10"), cfg.get("data_root"),
                        **(cfg.get("dataset_options") or {}))
    shape = tuple(int(s) for s in data.test_x.shape[1:])
    model = getattr(model, "module", model).to("cpu").eval()
    try:
        return int(count_macs(model, shape))
    except Exception as exc:  # a model the counter does not understand: report, go on
        print(f"warning: MACs not counted ({exc})", file=sys.stderr)
        return None


def run_search_job(job: SearchJob, *, protocol: str | None = None,
                   verbose: bool = False) -> Path:
    """Run (or continue) one search and return its derived ``genotype.json``; a finished
    search of the same ``protocol`` is not run again."""
    from robustnas.search import run_search
    from robustnas.search.state import CHECKPOINT_NAME

    run_dir = Path(job.config["out"])
    genotype = run_dir / "genotype.json"
    done = run_dir / "search_done.json"
    if result_of(done, protocol) is not None and genotype.is_file():
        return genotype
    _start(run_dir, protocol)
    with quiet_output(run_dir, verbose):
        resume = (run_dir / CHECKPOINT_NAME).is_file()
        result = run_search(overrides=job.config, resume=resume, show_progress=verbose)
    atomic_write_text(done, json.dumps({"genotype": str(result.genotype_path),
                                        "epochs": result.epochs_run,
                                        "protocol": protocol}) + "\n")
    if result.genotype_path.resolve() != genotype.resolve():
        genotype.write_text(result.genotype_path.read_text())
    return genotype
