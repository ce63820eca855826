"""A study worker: take the next waiting trial from the storage, run it, repeat.

Two Optuna studies live in the storage: ``<name>:search`` (one trial per search job,
drained first) and ``<name>`` (one trial per (architecture, training seed), objectives
clean and robust accuracy, both maximised). Every trial has a key (``DARTS_V2@0``) and
the fingerprint of its protocol (:mod:`robustnas.studies.protocol`). The rules that make
each trial run exactly once, or visibly retried, never silently lost:

- **Taking a trial** is Optuna's compare-and-set of its state from WAITING to RUNNING,
  atomic on every supported storage (SQLite through ``BEGIN IMMEDIATE``, see
  :mod:`robustnas.studies.storage`). A worker that took a trial whose key already has a
  finished trial, or an earlier waiting or running copy, records it as a pruned duplicate
  and runs nothing (the earliest copy always runs). A trial's run directory is also
  locked while it runs; a worker that finds it locked waits for the holder to finish.
- **Heartbeats**: the worker running a trial bumps its ``robustnas:beat`` attribute every
  ``heartbeat`` seconds. Another worker that sees a beat stand still for twice that long
  (measured on its own clock, so machines' clocks need not agree), or whose process is
  gone on this host, fails the trial and queues a retry (at most ``max_retry``, said on
  the terminal). A retry continues the run directory (``last.pt``) and records a finished
  ``result.json`` without training again.
- **Signals** (SIGINT/SIGTERM) stop the trial at its next step with a checkpoint; the trial
  is put back in the queue (not counted as a failure) and the worker exits 130.
- **Protocols**: a study file whose changes affect finished trials is refused, naming the
  changes (``--accept-changes`` keeps the old trials as another protocol and reruns those
  keys); trials of keys no longer in the file are left out of counts and the report.
- **Honest ends**: :attr:`StudyRun.complete` is true only when every trial of the study
  finished; otherwise :attr:`StudyRun.failed` names them (``robustnas study`` exits 4;
  ``--retry-failed`` queues them again).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import TrialState

from robustnas.errors import RobustnasError, UsageError
from robustnas.studies.heartbeat import BEAT_ATTR, WORKER_ATTR, Heartbeat, StaleWatch
from robustnas.studies.protocol import differences, fingerprint, training_doc
from robustnas.studies.sources import SAMPLED_KIND, Architecture, Expanded, expand_sources
from robustnas.studies.spec import StudySpec, load_study_spec
from robustnas.studies.storage import (
    StorageError,
    call_with_retry,
    claim,
    default_storage_url,
    mask_url,
    open_storage,
)
from robustnas.studies.tasks import Task, build_tasks, protocol_document, task_attrs
from robustnas.studies.trial import run_search_job, run_training_trial
from robustnas.studies.validation import validate_trials

SEARCH_SUFFIX = ":search"
#: ``robustnas study`` exit status when trials failed (documented in the README).
EXIT_FAILED_TRIALS = 4


class StudyInterrupted(RobustnasError):
    """The worker stopped on a signal; its trial was put back in the queue."""

    exit_status = 130


class _Stop(BaseException):
    """SIGINT/SIGTERM outside a trial's training loop (a BaseException, so that no
    ``except Exception`` on the way swallows it)."""


@dataclass
class StudyRun:
    """What :func:`run_study` returns: where things are and what this worker did.

    ``complete``: every trial of the study finished; ``failed``: ``(key, error)`` of the
    trials that failed for good (``--retry-failed`` queues them again); ``done``/``total``
    count the study's trials.
    """

    study_dir: Path
    storage: str
    name: str
    trials_run: int = 0
    report_paths: list[Path] = field(default_factory=list)
    table: str = ""
    complete: bool = False
    done: int = 0
    total: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def storage_display(self) -> str:
        """The storage URL with its password masked, for printing."""
        return mask_url(self.storage)

    def summary(self) -> str:
        """One line: how far the study is and what to do about failures."""
        line = f"study {self.name}: {self.done}/{self.total} trials done"
        if self.failed:
            first = f"{self.failed[0][0]} ({self.failed[0][1] or 'see its trial.log'})"
            more = f" and {len(self.failed) - 1} more" if len(self.failed) > 1 else ""
            line += (f", {len(self.failed)} failed: {first}{more}; fix the cause, then run "
                     "the same command with --retry-failed")
        return line


def run_study(spec: StudySpec | str | Path, *, storage: str | None = None,
              out: str | Path | None = None, verbose: bool = False, report: bool = True,
              stream: TextIO | None = None, poll: float | None = None,
              accept_changes: bool = False, retry_failed: bool = False,
              record_only: bool = False) -> StudyRun:
    """Run one worker of a study until no trial is waiting or running; the Python API of
    ``robustnas study``. Start it several times (same study file, same ``storage``) for
    several workers. ``accept_changes``: rerun the trials whose protocol the edited file
    changed; ``retry_failed``: queue failed trials again; ``record_only``: record trials
    whose results are on disk and run nothing (``robustnas study rebuild``). Raises
    :class:`StudyInterrupted` on a signal; returns after writing the report
    (``report=True``); check :attr:`StudyRun.complete`."""
    if not isinstance(spec, StudySpec):
        spec = load_study_spec(spec, out=out)
    elif out is not None:
        spec.out = Path(out)
    stream = stream if stream is not None else sys.stdout
    worker = _Worker(spec, storage, verbose, stream, poll, accept_changes=accept_changes,
                     retry_failed=retry_failed, record_only=record_only)
    worker.loop()
    run = StudyRun(spec.out, worker.url, spec.name, trials_run=worker.trials_run)
    run.done, run.total, run.failed = worker.standing()
    run.complete = run.done >= run.total and not run.failed
    if report:
        from robustnas.studies.report_files import write_study_report

        result = write_study_report(spec.out, storage=worker.url, name=spec.name)
        run.report_paths, run.table = result.paths, result.table
    return run


class _Worker:
    def __init__(self, spec: StudySpec, storage: str | None, verbose: bool, stream: TextIO,
                 poll: float | None, *, accept_changes: bool = False,
                 retry_failed: bool = False, record_only: bool = False) -> None:
        self.spec, self.verbose, self.stream = spec, verbose, stream
        self.record_only = record_only
        self.dir = Path(spec.out)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = storage or default_storage_url(self.dir)
        self.poll = poll if poll is not None else min(10.0, float(spec.heartbeat))
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.expanded = expand_sources(spec, self.dir)
        validate_trials(spec, self.expanded)
        self.tasks, self.arch_docs = build_tasks(spec, self.expanded)
        self.sampler_cfg = self.expanded.sampler
        self.sampler_protocol = fingerprint(training_doc(
            spec.training, spec.evaluation, {"sampler": self.sampler_cfg}))
        self.store = open_storage(self.url, patience=spec.storage_patience)
        self.study, self.search_study = self._open_studies(accept_changes, retry_failed)
        self.trials_run = 0
        self.watch = StaleWatch(self.me, 2.0 * spec.heartbeat)
        self._warned_sqlite = False

    # ---- the storage, with back-off --------------------------------------------------
    def _db(self, work: Callable[[], Any], what: str) -> Any:
        return call_with_retry(work, self.url, what, patience=self.spec.storage_patience)

    def _trials(self, study: optuna.Study, states: tuple[TrialState, ...] | None = None
                ) -> list[optuna.trial.FrozenTrial]:
        return self._db(lambda: study.get_trials(deepcopy=False, states=states),
                        "reading the trials")

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

    def _create(self, name: str, directions: list[str]) -> tuple[optuna.Study, bool]:
        def create() -> tuple[optuna.Study, bool]:
            try:
                return optuna.create_study(storage=self.store, study_name=name,
                                           directions=directions,
                                           sampler=self._sampler()), True
            except optuna.exceptions.DuplicatedStudyError:
                return optuna.load_study(study_name=name, storage=self.store,
                                         sampler=self._sampler()), False
        return call_with_retry(create, self.url, "opening the study", creating=True,
                               patience=self.spec.storage_patience)

    def _open_studies(self, accept_changes: bool, retry_failed: bool
                      ) -> tuple[optuna.Study, optuna.Study]:
        name = self.spec.name
        study, created = self._create(name, ["maximize", "maximize"])
        if len(study.directions) != 2:
            raise UsageError(f"storage already holds a study {name!r} that is not a "
                             "robustnas study; choose another name")
        search, _ = self._create(name + SEARCH_SUFFIX, ["maximize"])
        self.study, self.search_study = study, search
        if not created:  # give the creating worker time to finish queuing
            deadline = time.monotonic() + 60
            while self._attrs().get("grid_ready") is None and time.monotonic() < deadline:
                time.sleep(1)
        self._check_protocols(accept_changes)
        if retry_failed:
            self._db(lambda: study.set_user_attr("round", self._round() + 1),
                     "starting a new round")
        grid = fingerprint(sorted((k, t.protocol) for k, t in self.tasks.items()))
        if self._attrs().get("grid_ready") != grid or retry_failed:
            self._enqueue_missing()
            self._db(lambda: study.set_user_attr("grid_ready", grid), "queuing the trials")
        attrs = {"study_dir": str(self.dir.resolve()),
                 "spec": json.loads(json.dumps(self.spec.raw, default=str)),
                 "objective_eps": self.spec.objective_eps, "total": self.total,
                 "seeds": list(self.spec.seeds),
                 "protocols": {k: t.protocol for k, t in self.tasks.items() if not t.search},
                 "sampler_protocol": self.sampler_protocol if self.sampler_cfg else None,
                 "protocol_doc": self._protocol_json()}
        for key, value in attrs.items():
            if self._attrs().get(key) != value:
                self._db(lambda k=key, v=value: study.set_user_attr(k, v), "writing the study")
        return study, search

    def _protocol_json(self) -> dict[str, Any]:
        """The protocol document as the storage keeps it (JSON values only)."""
        doc = protocol_document(self.spec, self.expanded, self.arch_docs)
        return json.loads(json.dumps(doc, default=str))

    def _attrs(self) -> dict[str, Any]:
        return self._db(lambda: dict(self.study.user_attrs), "reading the study")

    def _round(self) -> int:
        return int(self._attrs().get("round", 0))

    def _check_protocols(self, accept: bool) -> None:
        """Refuse a file whose changes would put trials of two protocols in one table."""
        finished: dict[str, set[str]] = {}
        for study in (self.study, self.search_study):
            for t in self._trials(study, (TrialState.COMPLETE,)):
                key = t.user_attrs.get("key")
                if key in self.tasks:
                    finished.setdefault(key, set()).add(str(t.user_attrs.get("protocol")))
        changed = sorted(k for k, protocols in finished.items()
                         if self.tasks[k].protocol not in protocols)
        if not changed:
            return
        if accept:
            print(f"study {self.spec.name}: {len(changed)} finished trials are of an earlier "
                  "protocol; they are kept in the storage and their keys run again",
                  file=self.stream, flush=True)
            return
        if all(finished[k] == {"None"} for k in changed):
            raise UsageError(
                f"study {self.spec.name}: its {len(changed)} finished trials were recorded "
                "by an earlier robustnas, without the fingerprint of their protocol, so they "
                "cannot be told apart from trials of an edited file: run with "
                "--accept-changes to rerun them (they are kept as another protocol), or "
                "start a new study (another name or --out)")
        old = self._attrs().get("protocol_doc") or {}
        what = differences(old, self._protocol_json())
        where = "; ".join(what) if what else "a genotype file or the result format"
        raise UsageError(
            f"study {self.spec.name}: the study file changed since {len(changed)} of its "
            f"trials finished ({where}); a table must not mix protocols: start a new study "
            f"(another name or --out), or run with --accept-changes to keep the old trials "
            f"as another protocol and rerun them")

    @property
    def total(self) -> int:
        n = len(self.tasks)
        if self.sampler_cfg is not None:
            n += int(self.sampler_cfg["trials"])
        return n

    def _enqueue_missing(self) -> None:
        """Queue every task that has no waiting, running or finished trial of its protocol
        (failed ones too when a new round started with --retry-failed)."""
        round_ = self._round()
        for study, search in ((self.search_study, True), (self.study, False)):
            covered = set()
            for t in self._trials(study):
                if t.user_attrs.get("protocol") != self._protocol_of(t):
                    continue
                if t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE) \
                        or (t.state == TrialState.FAIL and t.user_attrs.get("round", 0) >= round_
                            and not t.user_attrs.get("interrupted")):
                    covered.add(t.user_attrs.get("key"))
            for task in self.tasks.values():
                if task.search == search and task.key not in covered:
                    self._enqueue(study, task.attrs)

    def _enqueue(self, study: optuna.Study, attrs: dict[str, Any]) -> None:
        attrs = {**attrs, "round": self._round()}
        self._db(lambda: study.enqueue_trial({}, user_attrs=attrs), "queuing a trial")

    def _protocol_of(self, trial: optuna.trial.FrozenTrial) -> str | None:
        """The current protocol of a trial's key (``None``: the key left the study)."""
        key = trial.user_attrs.get("key")
        if key in self.tasks:
            return self.tasks[key].protocol
        if trial.user_attrs.get("kind") == SAMPLED_KIND and self.sampler_cfg is not None:
            return self.sampler_protocol
        return None

    # ---- the loop ----------------------------------------------------------------------
    def loop(self) -> None:
        """Take and run trials until none is waiting or running anywhere."""
        with _stop_on_signals():
            try:
                self._progress("start")
                while True:
                    self._fail_stale()
                    if self._take(self.search_study):
                        continue
                    if self._take(self.study):
                        continue
                    if not self.record_only and self._sampler_quota() > 0:
                        self._run_sampled()
                        continue
                    if not self._active():
                        break
                    time.sleep(self.poll)
                self._progress("done")
            except _Stop:
                raise StudyInterrupted("interrupted between trials; run the same command to "
                                       "continue") from None

    def _active(self) -> bool:
        """Whether any trial of the current protocols is waiting or running."""
        for study in (self.search_study, self.study):
            for t in self._trials(study, (TrialState.WAITING, TrialState.RUNNING)):
                if t.user_attrs.get("protocol") == self._protocol_of(t) or (
                        t.state == TrialState.RUNNING and "key" not in t.user_attrs):
                    if not (self.record_only and t.state == TrialState.WAITING):
                        return True
        return False

    def _take(self, study: optuna.Study) -> bool:
        """Take one waiting trial and deal with it; ``False`` when none could be taken."""
        for t in self._trials(study, (TrialState.WAITING,)):
            if not self._runnable(t):
                continue
            if not self._claim(t):
                continue
            try:
                self._mark_taken(t)
                self._handle(study, self._db(
                    lambda tid=t._trial_id: study._storage.get_trial(tid), "reading a trial"))
            except _Stop:  # taken, not yet running: give it back like an interrupted trial
                self._requeue(study, t, "interrupted by a signal")
                raise StudyInterrupted(f"interrupted; trial {t.user_attrs.get('key')} was put "
                                       "back in the queue: run the same command to "
                                       "continue") from None
            return True
        return False

    def _runnable(self, t: optuna.trial.FrozenTrial) -> bool:
        """Whether this worker should take ``t`` now (obsolete trials are taken to be
        closed; a searched cell waits for its search; rebuild takes only results on disk)."""
        if self._protocol_of(t) != t.user_attrs.get("protocol"):
            return True  # taken only to be closed as obsolete
        arch = t.user_attrs.get("arch")
        if arch and arch.get("kind") == "search":
            state = self._key_state(self.search_study, arch["label"])
            if state in ("waiting", "running"):
                return False
        if self.record_only:
            return self._on_disk(t)
        return True

    def _on_disk(self, t: optuna.trial.FrozenTrial) -> bool:
        from robustnas.studies.trial import RESULT_NAME, result_of, trial_dir

        attrs = t.user_attrs
        protocol = attrs.get("protocol")
        if "job" in attrs:
            return result_of(Path(attrs["job"]["config"]["out"]) / "search_done.json",
                             protocol) is not None
        if "arch" not in attrs:
            return False
        folder = trial_dir(self.dir, attrs["arch"]["label"], int(attrs["seed"]))
        return result_of(folder / RESULT_NAME, protocol) is not None

    def _claim(self, t: optuna.trial.FrozenTrial) -> bool:
        storage = self.study._storage
        return bool(self._db(lambda: claim(storage, t._trial_id), "taking a trial"))

    def _mark_taken(self, t: optuna.trial.FrozenTrial) -> None:
        """Say who holds the trial and start its beat (watchers time silence from here)."""
        storage = self.study._storage
        self._db(lambda: storage.set_trial_system_attr(t._trial_id, WORKER_ATTR, self.me),
                 "taking a trial")
        self._db(lambda: storage.set_trial_system_attr(t._trial_id, BEAT_ATTR, 0),
                 "taking a trial")

    def _key_state(self, study: optuna.Study, key: str) -> str | None:
        """``complete``, ``running``, ``waiting``, ``failed`` or ``None`` for one key."""
        protocol = self.tasks[key].protocol if key in self.tasks else None
        states = {t.state for t in self._trials(study)
                  if t.user_attrs.get("key") == key and t.user_attrs.get("protocol") == protocol}
        for state, name in ((TrialState.COMPLETE, "complete"), (TrialState.RUNNING, "running"),
                            (TrialState.WAITING, "waiting"), (TrialState.FAIL, "failed")):
            if state in states:
                return name
        return None

    def _duplicate_of(self, study: optuna.Study, t: optuna.trial.FrozenTrial) -> int | None:
        """The number of a trial that makes ``t`` a duplicate: a finished trial of the same
        key and protocol, or an earlier waiting or running one (the earliest copy runs)."""
        key, protocol = t.user_attrs.get("key"), t.user_attrs.get("protocol")
        for other in self._trials(study):
            if other.number == t.number or other.user_attrs.get("key") != key \
                    or other.user_attrs.get("protocol") != protocol:
                continue
            if other.state == TrialState.COMPLETE or (
                    other.number < t.number
                    and other.state in (TrialState.WAITING, TrialState.RUNNING)):
                return other.number
        return None

    def _close(self, study: optuna.Study, t: optuna.trial.FrozenTrial, state: TrialState,
               values: list[float] | None = None, **attrs: Any) -> bool:
        """Finish a trial this worker holds; ``False`` if another worker already closed it
        (it took the trial for dead)."""
        storage = study._storage
        for key, value in attrs.items():
            try:
                self._db(lambda k=key, v=value: storage.set_trial_user_attr(
                    t._trial_id, k, v), "recording a trial")
            except optuna.exceptions.UpdateFinishedTrialError:
                return False

        def finish() -> bool:
            try:
                return storage.set_trial_state_values(t._trial_id, state=state, values=values)
            except optuna.exceptions.UpdateFinishedTrialError:
                return False
        return bool(self._db(finish, "recording a trial"))

    def _handle(self, study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        if self._protocol_of(t) != t.user_attrs.get("protocol"):
            self._close(study, t, TrialState.PRUNED, obsolete=True)
            return
        duplicate = self._duplicate_of(study, t)
        if duplicate is not None:
            self._close(study, t, TrialState.PRUNED, duplicate_of=duplicate)
            return
        self._execute(study, t)

    # ---- running one trial -------------------------------------------------------------
    def _execute(self, study: optuna.Study, t: optuna.trial.FrozenTrial,
                 trial: optuna.Trial | None = None,
                 arch: Architecture | None = None) -> None:
        from robustnas.search import SearchInterrupted
        from robustnas.studies.sources import SearchJob
        from robustnas.train.trainer import TrainingInterrupted

        attrs = t.user_attrs
        key = attrs["key"]
        protocol = attrs["protocol"]
        before = time.monotonic()
        values: list[float] | None = None
        record: dict[str, Any] = {"worker": self.me, "error": "", "interrupted": False}
        with Heartbeat(study._storage, t._trial_id, self.spec.heartbeat):
            try:
                if "job" in attrs:
                    job = SearchJob(**attrs["job"])
                    with self._trial_lock(f"search-{job.label}"):
                        path = run_search_job(job, protocol=protocol, verbose=self.verbose)
                    record["genotype"] = str(path)
                    values = [1.0]
                else:
                    arch = arch or Architecture.from_attrs(attrs["arch"])
                    seed = int(attrs["seed"])
                    if arch.kind == "search":
                        self._check_search(arch)
                    with self._trial_lock(f"{arch.label}@{seed}"):
                        result = run_training_trial(self.spec, self.dir, arch, seed,
                                                    protocol=protocol, verbose=self.verbose)
                    record["result"] = result
                    values = [float(result["clean"]), float(result["robust"])]
            except (TrainingInterrupted, SearchInterrupted, KeyboardInterrupt, _Stop):
                self._requeue(study, t, "interrupted by a signal")
                raise StudyInterrupted(f"interrupted; trial {key} was put back in the queue "
                                       "(its checkpoint is kept): run the same command to "
                                       "continue") from None
            except StorageError:
                raise  # the storage is gone for good: the trial stays RUNNING, goes stale
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    self._fail(study, t, exc)
                    return
                self._requeue(study, t, "no space left on the device")
                raise StorageError(f"trial {key}: no space left on the device; the trial was "
                                   "put back in the queue: free space and run the same "
                                   "command again") from None
            except Exception as exc:
                self._fail(study, t, exc)
                return
        self.trials_run += 1
        if trial is not None:  # a sampled trial: tell its sampler
            ok = self._db(lambda: self._tell(study, trial, values, record), "recording a trial")
        else:
            ok = self._close(study, t, TrialState.COMPLETE, values, **record)
        if not ok:  # another worker took it for dead meanwhile: its retry records the result
            self._ensure_queued(study, t)
            print(f"trial {key} finished after another worker had given up on it; its "
                  "result (on disk) is recorded by the retry", file=self.stream, flush=True)
        self._progress(f"{key} {time.monotonic() - before:.0f}s")

    @staticmethod
    def _tell(study: optuna.Study, trial: optuna.Trial, values: list[float] | None,
              record: dict[str, Any]) -> bool:
        try:
            for k, v in record.items():
                trial.set_user_attr(k, v)
            study.tell(trial, values)
        except optuna.exceptions.UpdateFinishedTrialError:
            return False
        return True

    def _check_search(self, arch: Architecture) -> None:
        state = self._key_state(self.search_study, arch.label)
        if state != "complete":
            raise UsageError(f"its search {arch.label} did not finish ({state or 'not run'}); "
                             f"see {Path(arch.spec).parent / 'trial.log'}")

    @contextlib.contextmanager
    def _trial_lock(self, name: str) -> Iterator[None]:
        """Hold the trial's lock; wait (beating) while another process holds it."""
        from robustnas.rundir import RunDirBusy, RunDirLock

        lock = RunDirLock(self.dir / "locks" / name)
        said = False
        while True:
            try:
                lock.acquire()
                break
            except RunDirBusy as exc:
                if not said:
                    print(f"trial {name}: waiting for the process that holds it ({exc})",
                          file=self.stream, flush=True)
                    said = True
                time.sleep(self.poll)
        try:
            yield
        finally:
            lock.release()

    def _fail(self, study: optuna.Study, t: optuna.trial.FrozenTrial, exc: BaseException
              ) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        self.trials_run += 1
        self._close(study, t, TrialState.FAIL, error=error, worker=self.me)
        print(f"trial {t.user_attrs.get('key', t.number)} failed: {error.splitlines()[0]}",
              file=self.stream, flush=True)
        self._progress("failed")

    def _requeue(self, study: optuna.Study, t: optuna.trial.FrozenTrial, why: str) -> None:
        """Give a trial back: closed as interrupted (not a failure), a copy queued."""
        with contextlib.suppress(RobustnasError):
            if self._close(study, t, TrialState.FAIL, interrupted=True, error=why,
                           worker=self.me):
                self._enqueue(study, task_attrs(t))

    def _ensure_queued(self, study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        if self._key_state(study, t.user_attrs["key"]) in ("failed", None):
            self._enqueue(study, task_attrs(t))

    # ---- sampled architectures -----------------------------------------------------------
    def _sampler_quota(self) -> int:
        if self.sampler_cfg is None:
            return 0
        return int(self.sampler_cfg["trials"]) - len(self._sampled_keys())

    def _sampled_keys(self, below: int | None = None) -> set[Any]:
        """Keys of the sampled trials that count against the quota (finished, running or
        queued; a trial just created has no key yet and counts by its number)."""
        keys = set()
        for t in self._trials(self.study):
            if below is not None and t.number >= below:
                continue
            if t.state == TrialState.RUNNING and "key" not in t.user_attrs:
                keys.add(("new", t.number))
            elif t.user_attrs.get("kind") == SAMPLED_KIND \
                    and t.user_attrs.get("protocol") == self.sampler_protocol \
                    and t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING):
                keys.add(t.user_attrs.get("key"))
        return keys

    def _run_sampled(self) -> None:
        trial = self._db(self.study.ask, "creating a trial")
        t = self._db(lambda: self.study._storage.get_trial(trial._trial_id), "reading a trial")
        if "key" in t.user_attrs:  # ask() handed out a trial queued meanwhile
            self._handle(self.study, t)
            return
        if len(self._sampled_keys(below=t.number)) >= int(self.sampler_cfg["trials"]):
            # another worker created the last one at the same moment
            self._db(lambda: self.study.tell(trial, state=TrialState.PRUNED), "closing a trial")
            return
        arch = self._sampled(trial)
        t = self._db(lambda: self.study._storage.get_trial(trial._trial_id), "reading a trial")
        self._execute(self.study, t, trial=trial, arch=arch)

    def _sampled(self, trial: optuna.Trial) -> Architecture:
        from robustnas.space.spaces import DEFAULT_SPACE, get_space
        from robustnas.studies.suggest import suggest_architecture

        cfg = self.sampler_cfg or {}
        label = f"{cfg['sampler']}-{trial.number:04d}"
        space = str(cfg.get("space", DEFAULT_SPACE))
        geno = suggest_architecture(space, trial,
                                    provenance={"sampler": f"optuna-{cfg['sampler']}",
                                                "study": self.spec.name, "trial": trial.number})
        path = self.dir / "genotypes" / f"{label}.json"
        get_space(space).save(geno, path)
        arch = Architecture(label, SAMPLED_KIND, str(path),
                            overrides=dict(cfg.get("set") or {}))
        seed = self.spec.seeds[0]
        for k, v in {"key": f"{label}@{seed}", "arch": arch.to_attrs(), "seed": seed,
                     "kind": SAMPLED_KIND, "protocol": self.sampler_protocol,
                     "round": self._round()}.items():
            self._db(lambda k=k, v=v: trial.set_user_attr(k, v), "recording a trial")
        return arch

    # ---- dead workers --------------------------------------------------------------------
    def _fail_stale(self) -> None:
        """Fail the running trials whose worker stopped beating and queue their retries."""
        for study in (self.search_study, self.study):
            for t in self._trials(study, (TrialState.RUNNING,)):
                gone, silent, silent_for, worker = self.watch.judge(t)
                if gone or silent:
                    self._give_up_on(study, t, worker or "?", silent_for, gone)
                elif worker not in ("", self.me) and self.url.startswith("sqlite"):
                    self._warn_sqlite(worker)

    def _give_up_on(self, study: optuna.Study, t: optuna.trial.FrozenTrial, worker: str,
                    silent_for: float, gone: bool) -> None:
        why = (f"its worker {worker} is gone" if gone else
               f"its worker {worker} sent no heartbeat for {silent_for:.0f} s")
        if not self._close(study, t, TrialState.FAIL, error=f"lost: {why}", stale=True):
            return  # another worker closed it first (and queued the retry)
        key = t.user_attrs.get("key")
        if key is None:  # a sampled trial killed before it had a key: draw another
            return
        attempts = sum(1 for o in self._trials(study, (TrialState.FAIL,))
                       if o.user_attrs.get("key") == key
                       and o.user_attrs.get("protocol") == t.user_attrs.get("protocol")
                       and o.user_attrs.get("round", 0) == t.user_attrs.get("round", 0)
                       and not o.user_attrs.get("interrupted"))
        if attempts > self.spec.max_retry:
            print(f"trial {key}: {why}; not retried ({attempts} attempts, max_retry "
                  f"{self.spec.max_retry})", file=self.stream, flush=True)
            return
        self._enqueue(study, {**task_attrs(t), "retry_of": t.number})
        print(f"trial {key}: {why}; retry {attempts}/{self.spec.max_retry} queued",
              file=self.stream, flush=True)

    def _warn_sqlite(self, other: str) -> None:
        if not self._warned_sqlite:
            self._warned_sqlite = True
            print(f"warning: another worker ({other}) shares this SQLite storage; SQLite is "
                  "meant for one worker: for several, use the default journal file or a "
                  "database server (--storage)", file=self.stream, flush=True)

    # ---- where the study stands ----------------------------------------------------------
    def _current_trials(self) -> list[optuna.trial.FrozenTrial]:
        """Every trial of both studies that is of its key's current protocol."""
        return [t for study in (self.search_study, self.study) for t in self._trials(study)
                if t.user_attrs.get("protocol") == self._protocol_of(t)]

    def standing(self, current: list[optuna.trial.FrozenTrial] | None = None
                 ) -> tuple[int, int, list[tuple[str, str]]]:
        """``(done, total, failed)`` over the study's current trials (read unless given)."""
        done: set[str] = set()
        failed: dict[str, str] = {}
        active: set[str] = set()
        for t in self._current_trials() if current is None else current:
            key = t.user_attrs.get("key")
            if key is None:
                continue
            if t.state == TrialState.COMPLETE:
                done.add(key)
            elif t.state in (TrialState.WAITING, TrialState.RUNNING):
                active.add(key)
            elif t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"):
                failed[key] = str(t.user_attrs.get("error") or "")
        lost = sorted(k for k in failed if k not in done and k not in active)
        return len(done), self.total, [(k, failed[k]) for k in lost]

    def _progress(self, what: str) -> None:
        current = self._current_trials()  # one read of the storage for the whole line
        done, total, failed = self.standing(current)
        running = sum(t.state == TrialState.RUNNING for t in current)
        durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in current
                     if t.state == TrialState.COMPLETE and t.datetime_start
                     and t.datetime_complete]
        remaining = max(total - done - len(failed), 0)
        eta = "?"
        if durations and remaining:
            # the trials running elsewhere, plus this worker unless it is finishing
            workers = max(running + (0 if what == "done" else 1), 1)
            eta = _hms(sum(durations) / len(durations) * remaining / workers)
        elif not remaining:
            eta = "0:00:00"
        now = _dt.datetime.now().strftime("%H:%M:%S")
        print(f"[{now}] study {self.spec.name}: {done}/{total} trials done, {running} "
              f"running, {len(failed)} failed | this worker: {self.trials_run} ({what}) | "
              f"ETA {eta}", file=self.stream, flush=True)


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGINT/SIGTERM raise :class:`_Stop` in the worker (training installs its own
    handlers while it runs, which stop at the next step with a checkpoint)."""
    def handler(signum: int, frame: Any) -> None:
        raise _Stop(signum)

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (a notebook's worker thread)
        previous.clear()
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["EXIT_FAILED_TRIALS", "StudyInterrupted", "StudyRun", "Task", "run_study", "Expanded"]
