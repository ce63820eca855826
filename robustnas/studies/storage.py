"""The study's trial database: an Optuna RDB storage with heartbeats and retries.

By default an SQLite file ``<study>/study.db``; any SQLAlchemy URL Optuna supports
(``postgresql://user:pw@host/db``, ``mysql+pymysql://...``) works the same way and is what
workers on several machines share. Every running trial records a heartbeat every
``heartbeat`` seconds; a trial whose heartbeat is older than twice that (its worker was
killed) is failed by the next worker that looks, and Optuna's
:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` puts a copy back in the queue (at most
``max_retry`` times), which a worker then takes like any pending trial.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from robustnas.errors import UsageError

DB_NAME = "study.db"


def default_storage_url(study_dir: Path) -> str:
    """The SQLite URL of ``<study_dir>/study.db``."""
    return f"sqlite:///{(Path(study_dir) / DB_NAME).resolve()}"


def open_storage(url: str, *, heartbeat: int = 60, max_retry: int = 3,
                 grace: int | None = None) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats (``grace`` defaults to 2 × ``heartbeat``) and retries."""
    engine_kwargs = {}
    if url.startswith("sqlite"):
        # several worker processes share the file: wait for its lock instead of failing
        engine_kwargs = {"connect_args": {"timeout": 120}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = retry_callback(max_retry)
        for attempt in range(10):
            try:
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                    grace_period=grace if grace is not None else 2 * heartbeat,
                    heartbeat_stale_trial_callback=retry)
            except (ImportError, ModuleNotFoundError) as exc:
                raise UsageError(f"storage {url!r}: database driver missing ({exc})") from None
            except Exception as exc:  # SQLAlchemy's errors: bad URL, server down, or ...
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                # ... another worker creating the tables at this very moment: try again
                if attempt < 9 and any(text in message for text in (
                        "already exists", "locked", "UNIQUE constraint")):
                    time.sleep(0.5 + attempt)
                    continue
                raise UsageError(f"cannot open storage {url!r}: {message}") from None
    raise AssertionError("unreachable")


def retry_callback(max_retry: int | None) -> Callable[[optuna.Study, Any], None]:
    """Optuna's callback that queues a copy of a failed trial (params and user attributes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) \
            or optuna.storages.RetryFailedTrialCallback  # Optuna < 4.9
        return cls(max_retry=max_retry)


def fail_stale(study: optuna.Study) -> None:
    """Fail trials whose worker stopped beating (their retries are queued by the callback)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
