"""The study's trial database: which storage, how to open it, and how to survive its faults.

Three kinds of storage, one URL each (``--storage``):

- **Optuna's journal file** (``journal:PATH``, or a path ending in ``.journal``): the
  default, ``<study>/study.journal``. Every change is one appended line under a file lock,
  designed by Optuna for several processes and for network file systems, so it is the
  choice for several workers on one machine or on machines that share the study directory.
- **SQLite** (``sqlite:///PATH``): one worker. Studies made before the journal became the
  default keep their ``<study>/study.db``. SQLite serialises writers only per statement,
  so robustnas opens every transaction with ``BEGIN IMMEDIATE``: reading a trial's state
  and changing it is then one atomic step, and two workers can never both take one trial.
  Still, Optuna does not recommend SQLite for parallel workers; the runner warns when a
  second worker joins one.
- **Any SQLAlchemy URL of a server** (``postgresql://user:pw@host/db``,
  ``mysql+pymysql://...``): many machines. Connections are checked before use
  (``pool_pre_ping``), so a restarted server is reconnected to.

Passwords never appear in a message: :func:`mask_url` hides them everywhere a URL is
printed. :func:`call_with_retry` retries an operation on a storage that is briefly away
(a server restart or outage, a locked SQLite file) with exponential back-off, up to a
patience; everything that is not transient becomes one :class:`StorageError` line.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna

from robustnas.errors import RobustnasError

DB_NAME = "study.db"
JOURNAL_NAME = "study.journal"
JOURNAL_SCHEME = "journal:"

T = TypeVar("T")

# Drivers SQLAlchemy loads for a URL scheme, and the package that provides each.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary] (psycopg 3, SQLAlchemy's default for postgresql://; or "
               "pip install -e '.[postgres]')",
    "psycopg2": "psycopg2-binary (or use postgresql+psycopg:// with psycopg 3)",
    "pymysql": "PyMySQL", "MySQLdb": "mysqlclient", "asyncpg": "asyncpg",
    "pg8000": "pg8000", "oracledb": "oracledb", "pyodbc": "pyodbc",
}


class StorageError(RobustnasError):
    """The trial database cannot be used (down for longer than the patience, damaged,
    read-only, misconfigured); the message says which and what to do."""


def default_storage_url(study_dir: Path) -> str:
    """The study's own storage: its journal file, or its ``study.db`` where an older study
    has one (and no journal), so that existing studies continue where they are."""
    study_dir = Path(study_dir)
    db = study_dir / DB_NAME
    journal = study_dir / JOURNAL_NAME
    if db.is_file() and not journal.exists():
        return f"sqlite:///{db.resolve()}"
    return f"{JOURNAL_SCHEME}{journal.resolve()}"


def storage_kind(url: str) -> str:
    """``journal``, ``sqlite`` or ``server``."""
    if journal_path(url) is not None:
        return "journal"
    return "sqlite" if url.startswith("sqlite") else "server"


def journal_path(url: str) -> Path | None:
    """The file of a journal URL (``journal:PATH`` or ``PATH.journal``); else ``None``."""
    if url.startswith(JOURNAL_SCHEME):
        rest = url[len(JOURNAL_SCHEME):]
        return Path(rest[2:] if rest.startswith("//") else rest)
    if "://" not in url and url.endswith(".journal"):
        return Path(url)
    return None


def local_file(url: str) -> Path | None:
    """The local file holding the storage (journal or SQLite), if any."""
    path = journal_path(url)
    if path is not None:
        return path
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    return None


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (any other text unchanged)."""
    if "://" not in url or storage_kind(url) != "server":
        return url
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # not parseable: hide everything between '://' and '@'
        head, _, rest = url.partition("://")
        return f"{head}://***@{rest.rpartition('@')[2]}" if "@" in rest else url
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def scrub(text: str, url: str) -> str:
    """``text`` with ``url``'s password (in any form it may be quoted) masked."""
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password if "://" in url else None
    except Exception:
        password = None
    text = text.replace(url, mask_url(url))
    if password:
        from urllib.parse import quote_plus

        for form in {str(password), quote_plus(str(password))}:
            if form:
                text = text.replace(form, "***")
    return text


def open_storage(url: str, *, patience: float = 60.0) -> optuna.storages.BaseStorage:
    """Open (creating where needed) the storage at ``url``; see the module docstring.

    Raises :class:`StorageError` with one line (driver missing, damaged or read-only file,
    server unreachable for ``patience`` seconds).
    """
    path = journal_path(url)
    if path is not None:
        return _open_journal(path)
    return call_with_retry(lambda: _open_rdb(url), url, "opening the storage",
                           patience=patience, creating=True)


def _open_journal(path: Path) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if path.is_symlink():
        raise StorageError(f"journal {path} is a symbolic link; give the real file")
    if path.exists() and not path.is_file():
        raise StorageError(f"journal {path} is not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise StorageError(f"cannot open journal {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # a line that is not JSON: the journal was edited or damaged
        raise StorageError(_damaged(path, exc)) from None
    return storage


def _damaged(path: Path, exc: BaseException) -> str:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (f"storage {path} is damaged ({reason}): move it aside and run "
            f"'robustnas study rebuild STUDY.yaml', which rebuilds it from the trial results "
            f"on disk")


def _open_rdb(url: str) -> optuna.storages.RDBStorage:
    sqlite = url.startswith("sqlite")
    if sqlite:
        file = local_file(url)
        if file is not None and file.is_symlink():
            raise StorageError(f"SQLite file {file} is a symbolic link; give the real file")
        # wait for another writer's lock instead of failing at once
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    if sqlite:
        _immediate_transactions(storage.engine)
    return storage


def _immediate_transactions(engine: Any) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE``.

    Python's sqlite3 starts a transaction only at the first write, so a worker's "is this
    trial still waiting?" read and its "it is mine now" write are two transactions, and two
    workers can both read "waiting" (the double hand-out seen with four workers). With the
    write lock taken at the start, Optuna's check-and-set is atomic. (SQLAlchemy's
    documented recipe for pysqlite's transaction handling.)
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made while the tables were created lack the listener


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a storage that is away for a while (worth retrying)."""
    text = str(exc).lower()
    permanent = ("readonly database", "read-only", "not a database", "malformed",
                 "no such table", "password authentication failed", "does not exist",
                 "unable to open database file", "permission denied")
    if any(p in text for p in permanent):
        return False
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - optuna depends on SQLAlchemy
        return False
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError,
                        sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "locked" in text


def _creation_race(exc: BaseException) -> bool:
    """Two workers creating the tables (or the study) at the same moment: the loser retries.
    SQLite says ``already exists``/``UNIQUE constraint``, PostgreSQL ``duplicate key value``
    (``pg_type_typname_nsp_index``: two CREATE TABLE of one name)."""
    text = str(exc)
    return any(t in text for t in ("already exists", "UNIQUE constraint", "duplicate key value",
                                   "UniqueViolation", "Duplicate entry"))


def describe(exc: BaseException, url: str) -> str:
    """One line for a storage error, password masked, with what to do where known."""
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing is None and isinstance(exc, ImportError):
        cause = exc.__cause__ or exc.__context__
        missing = getattr(cause, "name", None)
        if missing is None:
            for name in _DRIVER_PACKAGES:
                if f"'{name}'" in str(exc) or f" {name}" in str(exc):
                    missing = name
                    break
    if missing is not None:
        package = _DRIVER_PACKAGES.get(missing.split(".")[0], missing)
        return (f"storage {mask_url(url)}: database driver {missing!r} is not installed: "
                f"pip install {package}")
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = scrub(text, url)
    lowered = text.lower()
    file = local_file(url)
    if "readonly database" in lowered or "read-only" in lowered:
        return (f"storage {mask_url(url)} is read-only ({text}); make the file and its "
                "folder writable, or copy the study elsewhere (--out, --storage)")
    if ("not a database" in lowered or "malformed" in lowered) and file is not None:
        return _damaged(file, exc)
    if isinstance(exc, ValueError) and journal_path(url) is not None:  # a line not JSON
        return _damaged(journal_path(url), exc)
    return f"storage {mask_url(url)}: {text}"


def call_with_retry(work: Callable[[], T], url: str, what: str, *, patience: float = 600.0,
                    creating: bool = False, quiet: bool = False) -> T:
    """Run ``work`` and retry it with exponential back-off (1 s, 2 s, ... at most 30 s)
    while the storage is away, for at most ``patience`` seconds; any other error, or a
    longer outage, is one :class:`StorageError` line. ``creating``: also retry the lost race
    of two workers creating the same tables."""
    deadline = time.monotonic() + patience
    delay, said = 1.0, False
    while True:
        try:
            return work()
        except RobustnasError:
            raise
        except ImportError as exc:
            raise StorageError(describe(exc, url)) from None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageError(f"storage {mask_url(url)}: no space left on the device "
                                   f"while {what}; free space and run the same command "
                                   "again") from None
            raise StorageError(describe(exc, url)) from None
        except Exception as exc:  # SQLAlchemy's and the drivers' errors
            if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__:
                exc = exc.__cause__  # Optuna wraps SQLAlchemy's error: judge the original
            elif isinstance(exc, optuna.exceptions.OptunaError):
                raise  # a duplicated study, a finished trial: the caller decides
            retry = is_transient(exc) or (creating and _creation_race(exc))
            if not retry or time.monotonic() + delay > deadline:
                line = describe(exc, url)
                if retry:
                    line += f" (still failing after {patience:.0f} s of retries)"
                raise StorageError(line) from None
            if not said and not quiet and not _creation_race(exc):
                print(f"storage {mask_url(url)} unavailable while {what} "
                      f"({scrub(str(exc).splitlines()[0] if str(exc) else '', url)[:200]}); "
                      f"retrying for up to {patience:.0f} s", file=sys.stderr, flush=True)
                said = True
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


def claim(storage: optuna.storages.BaseStorage, trial_id: int) -> bool:
    """Take a waiting trial: Optuna's compare-and-set of its state from WAITING to RUNNING.
    ``True`` for exactly one caller however many try at once (on SQLite thanks to
    :func:`_immediate_transactions`); ``False`` when another worker has it."""
    try:
        return bool(storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.RUNNING))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def move_aside(path: Path) -> Path:
    """Rename a damaged storage file out of the way; returns its new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}-{os.getpid()}")
    path.rename(target)
    return target
