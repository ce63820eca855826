"""A study worker: take the next pending trial from the Optuna storage, run it, repeat.

Two Optuna studies live in the storage: ``<name>:search`` (one trial per search job,
drained first) and ``<name>`` (one trial per (architecture, training seed), objectives
clean and robust accuracy, both maximised). The first worker to create the study enqueues
every trial (``Study.enqueue_trial``, identity in the user attributes ``key``, ``arch``,
``seed``); creation is atomic in the database, so concurrent workers never enqueue twice
and later ones only add what a changed study file adds. Each worker then loops: fail stale
trials (their retries are queued), take a pending trial with ``Study.optimize`` (which
beats the heartbeat while the trial runs), and when nothing is pending wait for trials
still running elsewhere (they may die and come back as retries) before finishing.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import optuna

from robustnas.errors import RobustnasError, UsageError
from robustnas.studies.sources import SAMPLED_KIND, Architecture, Expanded, expand_sources
from robustnas.studies.spec import StudySpec, load_study_spec
from robustnas.studies.storage import (
    default_storage_url,
    fail_stale,
    open_storage,
    retry_callback,
)
from robustnas.studies.trial import run_search_job, run_training_trial

SEARCH_SUFFIX = ":search"
_TERMINAL = (optuna.trial.TrialState.COMPLETE,)
_ACTIVE = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)


class StudyInterrupted(RobustnasError):
    """The worker stopped on a signal; its trial was put back in the queue."""


@dataclass
class StudyRun:
    """What :func:`run_study` returns: where things are and what this worker did."""

    study_dir: Path
    storage: str
    name: str
    trials_run: int = 0
    report_paths: list[Path] = field(default_factory=list)
    table: str = ""


def run_study(spec: StudySpec | str | Path, *, storage: str | None = None,
              out: str | Path | None = None, verbose: bool = False, report: bool = True,
              stream: TextIO | None = None, poll: float | None = None) -> StudyRun:
    """Run one worker of a study until no trial is pending or running; the Python API of
    ``robustnas study``. Start it several times (same study file, same ``storage``) for
    several workers. Returns after writing the study report (``report=True``)."""
    if not isinstance(spec, StudySpec):
        spec = load_study_spec(spec, out=out)
    elif out is not None:
        spec.out = Path(out)
    stream = stream if stream is not None else sys.stdout
    worker = _Worker(spec, storage, verbose, stream, poll)
    worker.loop()
    run = StudyRun(spec.out, worker.url, spec.name, trials_run=worker.trials_run)
    if report:
        from robustnas.studies.report import write_study_report

        result = write_study_report(spec.out, storage=worker.url, name=spec.name)
        run.report_paths, run.table = result.paths, result.table
    return run


class _Worker:
    def __init__(self, spec: StudySpec, storage: str | None, verbose: bool, stream: TextIO,
                 poll: float | None) -> None:
        self.spec, self.verbose, self.stream = spec, verbose, stream
        self.dir = Path(spec.out)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = storage or default_storage_url(self.dir)
        self.poll = poll if poll is not None else min(10.0, float(spec.heartbeat))
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.expanded = expand_sources(spec, self.dir)
        self.store = open_storage(self.url, heartbeat=spec.heartbeat, max_retry=spec.max_retry)
        self.sampler_cfg = self.expanded.sampler
        self.study, self.search_study = self._open_studies()
        self.trials_run = 0
        self.started = time.monotonic()
        self.interrupted: BaseException | None = None
        self.last_id: int | None = None

    # ---- setup -------------------------------------------------------------------------
    def _sampler(self) -> optuna.samplers.BaseSampler:
        from robustnas.studies.suggest import make_sampler

        cfg = self.sampler_cfg
        if cfg is None:
            return optuna.samplers.RandomSampler()
        seed = cfg.get("seed")
        # Concurrent workers must not draw the same architectures: mix in the process id.
        seed = None if seed is None else (int(seed) * 1_000_003 + os.getpid()) % 2**31
        return make_sampler(cfg["sampler"], seed, population=cfg.get("population"),
                            startup=cfg.get("startup"))

    def _open_studies(self) -> tuple[optuna.Study, optuna.Study]:
        name = self.spec.name
        created = False
        try:
            study = optuna.create_study(storage=self.store, study_name=name,
                                        directions=["maximize", "maximize"],
                                        sampler=self._sampler())
            created = True
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=self.store,
                                      sampler=self._sampler())
        if len(study.directions) != 2:
            raise UsageError(f"storage already holds a study {name!r} that is not a "
                             "robustnas study; choose another name")
        search = optuna.create_study(storage=self.store, study_name=name + SEARCH_SUFFIX,
                                     direction="maximize", load_if_exists=True)
        fingerprint = self._fingerprint()
        if not created:  # give the creating worker time to finish enqueuing
            deadline = time.monotonic() + 60
            while study.user_attrs.get("grid_ready") is None and time.monotonic() < deadline:
                time.sleep(1)
        if study.user_attrs.get("grid_ready") != fingerprint:  # new, or the file changed
            self._enqueue(study, search)
            study.set_user_attr("grid_ready", fingerprint)
        study.set_user_attr("fingerprint", fingerprint)
        study.set_user_attr("study_dir", str(self.dir.resolve()))
        study.set_user_attr("spec", json.loads(json.dumps(self.spec.raw, default=str)))
        study.set_user_attr("objective_eps", self.spec.objective_eps)
        study.set_user_attr("total", self.total)
        return study, search

    @property
    def total(self) -> int:
        n = len(self.expanded.architectures) * len(self.spec.seeds)
        n += len(self.expanded.searches)
        if self.sampler_cfg is not None:
            n += int(self.sampler_cfg["trials"])
        return n

    def _fingerprint(self) -> str:
        keys = [j.label for j in self.expanded.searches]
        keys += [f"{a.label}@{s}" for a in self.expanded.architectures for s in self.spec.seeds]
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
        return f"{digest}-{len(keys)}"

    def _enqueue(self, study: optuna.Study, search: optuna.Study) -> None:
        have = {t.user_attrs.get("key") for t in search.get_trials(deepcopy=False)}
        for job in self.expanded.searches:
            if job.label not in have:
                search.enqueue_trial({}, user_attrs={"key": job.label, "job": {
                    "label": job.label, "regularizer": job.regularizer, "seed": job.seed,
                    "config": job.config}})
        have = {t.user_attrs.get("key") for t in study.get_trials(deepcopy=False)}
        # seed-major: a study stopped half-way has every architecture with the first seeds
        for seed in self.spec.seeds:
            for arch in self.expanded.architectures:
                key = f"{arch.label}@{seed}"
                if key not in have:
                    study.enqueue_trial({}, user_attrs={"key": key, "arch": arch.to_attrs(),
                                                        "seed": seed, "kind": arch.kind})

    # ---- the loop ----------------------------------------------------------------------
    def loop(self) -> None:
        self._progress("start")
        while True:
            fail_stale(self.search_study)
            fail_stale(self.study)
            if self._pending(self.search_study):
                self._run(self.search_study, self._search_objective)
                continue
            if self._pending(self.study) or self._sampler_quota() > 0:
                self._run(self.study, self._train_objective)
                continue
            if not (self._running(self.study) or self._running(self.search_study)):
                break
            time.sleep(self.poll)
        self._progress("done")

    def _run(self, study: optuna.Study, objective: Any) -> None:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.interrupted = None
        self.last_id = None
        before = time.monotonic()
        study.optimize(objective, n_trials=1, catch=(Exception,))
        if self.interrupted is not None:
            self._requeue_last(study)
            raise StudyInterrupted("interrupted; the trial was put back in the queue, run the "
                                   "same command to resume") from None
        last = study._storage.get_trial(self.last_id) if self.last_id is not None else None
        self.trials_run += 1
        if last is not None and last.state == optuna.trial.TrialState.FAIL:
            err = last.user_attrs.get("error", "see its trial.log")
            print(f"trial {last.user_attrs.get('key', last.number)} failed: {err}",
                  file=self.stream, flush=True)
        if last is not None and last.state != optuna.trial.TrialState.PRUNED:
            self._progress(f"{time.monotonic() - before:.0f}s")

    def _requeue_last(self, study: optuna.Study) -> None:
        if self.last_id is not None:
            trial = study._storage.get_trial(self.last_id)
            retry_callback(None)(study, trial)

    @staticmethod
    def _pending(study: optuna.Study) -> bool:
        return bool(study.get_trials(deepcopy=False,
                                     states=(optuna.trial.TrialState.WAITING,)))

    @staticmethod
    def _running(study: optuna.Study) -> int:
        return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))

    def _sampler_quota(self, exclude: int | None = None) -> int:
        if self.sampler_cfg is None:
            return 0
        labels = {t.user_attrs.get("key") for t in self.study.get_trials(deepcopy=False)
                  if t.user_attrs.get("kind") == SAMPLED_KIND and t.number != exclude
                  and t.state != optuna.trial.TrialState.FAIL}
        return int(self.sampler_cfg["trials"]) - len(labels)

    # ---- objectives --------------------------------------------------------------------
    def _search_objective(self, trial: optuna.Trial) -> float:
        from robustnas.studies.sources import SearchJob

        self.last_id = trial._trial_id

        attrs = trial.user_attrs
        if "job" not in attrs:  # lost a race for the last pending search: nothing to do
            trial.set_user_attr("spurious", True)
            raise optuna.TrialPruned("no pending search")
        job = SearchJob(**attrs["job"])
        path = self._guard(trial, lambda: run_search_job(job, verbose=self.verbose))
        trial.set_user_attr("genotype", str(path))
        return 1.0

    def _train_objective(self, trial: optuna.Trial) -> tuple[float, float]:
        self.last_id = trial._trial_id
        attrs = trial.user_attrs
        if "arch" in attrs:
            arch, seed = Architecture.from_attrs(attrs["arch"]), int(attrs["seed"])
        elif self._sampler_quota(exclude=trial.number) > 0:
            arch, seed = self._sampled(trial), self.spec.seeds[0]
        else:  # lost a race for the last pending trial: record it as pruned, run nothing
            trial.set_user_attr("spurious", True)
            raise optuna.TrialPruned("no pending trial")
        if arch.kind == "search" and not self._search_ready(trial, arch):
            raise optuna.TrialPruned("deferred until its search has run")
        result = self._guard(trial, lambda: run_training_trial(
            self.spec, self.dir, arch, seed, verbose=self.verbose))
        trial.set_user_attr("result", result)
        return float(result["clean"]), float(result["robust"])

    def _sampled(self, trial: optuna.Trial) -> Architecture:
        from robustnas.space.genotype import save_genotype
        from robustnas.space.nb201.genotype import save_nb201_genotype
        from robustnas.studies.suggest import suggest_architecture

        cfg = self.sampler_cfg or {}
        label = f"{cfg['sampler']}-{trial.number:04d}"
        space = str(cfg.get("space", "darts"))
        geno = suggest_architecture(space, trial,
                                    provenance={"sampler": f"optuna-{cfg['sampler']}",
                                                "study": self.spec.name, "trial": trial.number})
        path = self.dir / "genotypes" / f"{label}.json"
        (save_nb201_genotype if space == "nb201" else save_genotype)(geno, path)
        arch = Architecture(label, SAMPLED_KIND, str(path),
                            overrides=dict(cfg.get("set") or {}))
        trial.set_user_attr("key", f"{label}@{self.spec.seeds[0]}")
        trial.set_user_attr("arch", arch.to_attrs())
        trial.set_user_attr("seed", self.spec.seeds[0])
        trial.set_user_attr("kind", SAMPLED_KIND)
        return arch

    def _search_ready(self, trial: optuna.Trial, arch: Architecture) -> bool:
        """Wait while the search is running; False (trial deferred) while it is queued."""
        while True:
            if (Path(arch.spec).parent / "search_done.json").is_file():
                return True
            fail_stale(self.search_study)
            mine = [t for t in self.search_study.get_trials(deepcopy=False)
                    if t.user_attrs.get("key") == arch.label]
            states = {t.state for t in mine}
            if optuna.trial.TrialState.RUNNING in states:
                time.sleep(self.poll)
                continue
            if optuna.trial.TrialState.WAITING in states:
                # its search waits for a worker: queue this trial again behind it
                self.study.enqueue_trial({}, user_attrs={
                    k: v for k, v in trial.user_attrs.items()
                    if k in ("key", "arch", "seed", "kind")})
                trial.set_user_attr("deferred", True)
                return False
            raise UsageError(f"search {arch.label} failed; see "
                             f"{Path(arch.spec).parent / 'trial.log'}")

    def _guard(self, trial: optuna.Trial, work: Any) -> Any:
        """Run ``work``; record errors on the trial; remember interruptions."""
        from robustnas.search import SearchInterrupted
        from robustnas.train.trainer import TrainingInterrupted

        trial.set_user_attr("worker", f"{os.uname().nodename}:{os.getpid()}")
        trial.set_user_attr("interrupted", False)  # a retry inherits its original's attributes
        trial.set_user_attr("error", "")
        try:
            return work()
        except (TrainingInterrupted, SearchInterrupted, KeyboardInterrupt) as exc:
            trial.set_user_attr("interrupted", True)
            self.interrupted = exc
            raise RuntimeError("interrupted") from None
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            raise

    # ---- terminal ----------------------------------------------------------------------
    def _progress(self, what: str) -> None:
        trials = self.study.get_trials(deepcopy=False) + \
            self.search_study.get_trials(deepcopy=False)
        done = {t.user_attrs.get("key") for t in trials if t.state in _TERMINAL}
        running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        failed = sum(bool(t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("error"))
                     for t in trials)
        total = self.total
        durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials
                     if t.state in _TERMINAL and t.datetime_start and t.datetime_complete]
        remaining = max(total - len(done), 0)
        eta = "?"
        if durations and remaining:
            # the trials running elsewhere, plus this worker unless it is finishing
            workers = max(running + (0 if what == "done" else 1), 1)
            eta = _hms(sum(durations) / len(durations) * remaining / workers)
        elif not remaining:
            eta = "0:00:00"
        now = _dt.datetime.now().strftime("%H:%M:%S")
        print(f"[{now}] study {self.spec.name}: {len(done)}/{total} trials done, {running} "
              f"running, {failed} failed | this worker: {self.trials_run} ({what}) | "
              f"ETA {eta}", file=self.stream, flush=True)


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


__all__ = ["StudyInterrupted", "StudyRun", "run_study", "Expanded"]
