"""Liveness of running trials: the beat a worker sends, and how others judge its silence.

The worker running a trial bumps the trial's ``robustnas:beat`` system attribute every
``heartbeat`` seconds from a thread (:class:`Heartbeat`); ``robustnas:worker`` names it
(``host:pid``). Another worker judges a running trial with :class:`StaleWatch`: *gone* when
its process no longer exists on this host, *silent* when its beat has not changed for longer
than the grace period, measured on the watcher's own clock from when it first saw that
beat, so the machines' clocks need not agree.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import optuna

BEAT_ATTR = "robustnas:beat"
WORKER_ATTR = "robustnas:worker"


class Heartbeat:
    """A thread bumping a running trial's beat every ``interval`` seconds. A storage that
    is briefly away misses beats, never the trial: the thread keeps trying."""

    def __init__(self, storage: Any, trial_id: int, interval: float) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.interval = max(float(interval), 0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="study-heartbeat")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        count = 0
        while not self._stop.wait(self.interval):
            count += 1
            with contextlib.suppress(Exception):
                self.storage.set_trial_system_attr(self.trial_id, BEAT_ATTR, count)


class StaleWatch:
    """Tracks the beats of other workers' running trials (see the module docstring)."""

    def __init__(self, me: str, grace: float) -> None:
        self.me, self.grace = me, grace
        self._seen: dict[int, tuple[Any, float]] = {}
        self._host = socket.gethostname()

    def judge(self, t: optuna.trial.FrozenTrial) -> tuple[bool, bool, float, str]:
        """``(gone, silent, silent_for, worker)`` of a running trial (never stale if mine)."""
        from robustnas.rundir import pid_alive

        worker = str(t.system_attrs.get(WORKER_ATTR, ""))
        if worker == self.me:
            return False, False, 0.0, worker
        now = time.monotonic()
        beat = t.system_attrs.get(BEAT_ATTR)
        seen = self._seen.get(t._trial_id)
        if seen is None or seen[0] != beat:
            self._seen[t._trial_id] = seen = (beat, now)
        host, _, pid = worker.rpartition(":")
        gone = host == self._host and pid.isdigit() and not pid_alive(int(pid))
        silent_for = now - seen[1]
        return gone, silent_for > self.grace, silent_for, worker
