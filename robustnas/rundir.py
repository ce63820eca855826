"""The life cycle of a run directory: one writer at a time, no mixing of two runs, no stale
temporary files.

A long-running command (``search``, ``retrain``, a study's trial) opens its ``--out``
directory with :func:`open_run_dir`, which

1. takes the directory's lock (:class:`RunDirLock`, an exclusive ``flock`` on
   ``<run_dir>/.robustnas.lock`` that records the holder's pid, host, command and start
   time). A second process refuses with one line naming the holder. The kernel drops the
   lock when its process dies, however it dies; a lock file left by a killed process is
   recognised as stale and taken over, saying so. The lock file is opened without
   following a symbolic link (``O_NOFOLLOW``): a link, a folder or anything else that is
   not a regular file at its name is refused with one line, never written through; so is
   an ``--out`` that cannot be a directory (a file, ``/proc/x``, a read-only file system);
2. removes temporary files left by an interrupted atomic write (``.last.pt.*.tmp``, ...);
3. for a new run, refuses a directory that already holds a run (a checkpoint or a
   summary) unless ``overwrite`` is given, in which case the old run's files are deleted
   first, so TensorBoard never shows two runs mixed in one folder. A run killed before its
   first checkpoint holds nothing to continue: a new run there removes its events instead.

The lock is held until :meth:`RunDir.close` (the commands close it when they end, however
they end). Everything here is plain Python, usable from a notebook.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import re
import shlex
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustnas.errors import RobustnasError

try:  # POSIX; elsewhere the lock falls back to an exclusive create plus a pid check
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".robustnas.lock"

# Temporary files of robustnas.io's atomic writer (".<name>.<random>.tmp") and its
# directory probe (".write-test-<random>").
_TEMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$|^\.write-test-[A-Za-z0-9_]+$")
# Files a run writes at the top of its directory (removed by ``overwrite``).
_RUN_FILE_PATTERN = re.compile(
    r"^events\.out\.tfevents\..*$|.*\.(pt|png|svg|json|jsonl|yaml|yml|csv)$")
# Any one of these means "this directory holds a run" (a run killed before its first
# checkpoint leaves only config.yaml, genotype.json and TensorBoard events: nothing to continue).
RUN_MARKERS = ("checkpoint.pt", "last.pt", "best.pt", "summary.json")

Printer = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class RunDirBusy(RobustnasError):
    """Another live process holds the run directory's lock."""


class RunDirOccupied(RobustnasError):
    """A new run was asked for in a directory that already holds one."""


@dataclass
class LockInfo:
    """Who holds (or held) a run directory's lock."""

    pid: int
    host: str
    command: str
    started: str

    @classmethod
    def current(cls) -> LockInfo:
        """This process."""
        command = " ".join(shlex.quote(a) for a in sys.argv) or sys.executable
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        return cls(os.getpid(), socket.gethostname(), command[:500], started)

    @classmethod
    def parse(cls, text: str) -> LockInfo | None:
        """Read a lock file's content; ``None`` if it is empty or not ours."""
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["command"]),
                       str(data["started"]))
        except (ValueError, KeyError, TypeError):
            return None

    def dumps(self) -> str:
        """The lock file's content."""
        return json.dumps({"pid": self.pid, "host": self.host, "command": self.command,
                           "started": self.started}) + "\n"

    def describe(self) -> str:
        """``pid 123 on host h, started <time>: <command>``."""
        return f"pid {self.pid} on host {self.host}, started {self.started}: {self.command}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class RunDirLock:
    """An exclusive lock on one run directory (see the module docstring).

    :meth:`acquire` raises :class:`RunDirBusy` naming the holder when a live process holds
    it, and returns a message when it took over a stale lock (else ``None``).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None
        self.info: LockInfo | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, *, retries: int = 10) -> str | None:
        """Take the lock; see the class docstring."""
        if self.held:
            return None
        self._make_dir()
        if fcntl is None:  # pragma: no cover - Windows
            return self._acquire_exclusive_create()
        for attempt in range(retries):
            fd = self._open(os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RobustnasError(f"cannot lock run directory {self.run_dir}: "
                                         f"{exc.strerror or exc}") from None
                if attempt + 1 < retries:  # a holder may be just starting or just leaving
                    time.sleep(0.05)
                    continue
                raise RunDirBusy(self._busy_message(read_lock_info(self.path))) from None
            # The file may have been unlinked by a holder that released it meanwhile.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = LockInfo.parse(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
            self._write(fd)
            return self._stale_message(previous)
        raise RunDirBusy(f"cannot lock run directory {self.run_dir}: it keeps changing")

    def _make_dir(self) -> None:
        """Create the run directory; anything in the way is one line, not a traceback."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if self.run_dir.exists() and not self.run_dir.is_dir():
                reason = "it exists and is not a directory"
            raise RobustnasError(f"cannot create run directory {self.run_dir}: {reason}; "
                                 f"use another --out") from None

    def _open(self, flags: int) -> int:
        """Open the lock file without following a symbolic link.

        A link planted at the lock's name would otherwise make the run overwrite whatever it
        points to with the lock's JSON (and truncate it): refuse it, and anything else that
        is not a regular file, with one line. ``O_NONBLOCK``: a FIFO there must not hang.
        """
        flags |= (getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
                  | getattr(os, "O_NONBLOCK", 0))
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP or self.path.is_symlink():
                raise RobustnasError(self._not_regular("a symbolic link")) from None
            if isinstance(exc, FileExistsError):
                raise  # O_EXCL: the caller's business
            if self.path.exists() and not self.path.is_file():
                raise RobustnasError(self._not_regular("not a regular file")) from None
            raise RobustnasError(f"cannot lock run directory {self.run_dir}: "
                                 f"{exc.strerror or exc}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RobustnasError(self._not_regular("not a regular file"))
        return fd

    def _not_regular(self, what: str) -> str:
        target = ""
        if self.path.is_symlink():
            target = f" (to {os.readlink(self.path)})"
        return (f"run directory {self.run_dir}: its lock file {LOCK_NAME} is {what}{target}; "
                f"robustnas never writes through it: remove it, or use another --out")

    def _write(self, fd: int) -> None:
        self.info = LockInfo.current()
        data = self.info.dumps().encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self._fd = fd

    def _acquire_exclusive_create(self) -> str | None:  # pragma: no cover - Windows
        previous = None
        for _ in range(3):
            try:
                fd = self._open(os.O_RDWR | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                previous = read_lock_info(self.path)
                if previous is not None and (previous.host != socket.gethostname()
                                             or pid_alive(previous.pid)):
                    raise RunDirBusy(self._busy_message(previous)) from None
                self.path.unlink(missing_ok=True)
                continue
            self._write(fd)
            return self._stale_message(previous)
        raise RunDirBusy(self._busy_message(previous))

    def _busy_message(self, holder: LockInfo | None) -> str:
        who = holder.describe() if holder is not None else "another process"
        if holder is not None and holder.pid == os.getpid() and \
                holder.host == socket.gethostname():
            who = (f"this process (an earlier run object on it was not closed: call its "
                   f"close(), or run it to the end), started {holder.started}")
        return (f"run directory {self.run_dir} is in use by {who} (lock {self.path}); "
                f"wait for it to finish, stop it, or use another --out")

    def _stale_message(self, previous: LockInfo | None) -> str | None:
        if previous is None:
            return None
        state = "is no longer running" if (previous.host != socket.gethostname()
                                           or not pid_alive(previous.pid)) \
            else "no longer holds it"
        return (f"taking over the stale lock of {self.run_dir}: {previous.describe()} "
                f"{state}")

    def release(self) -> None:
        """Give the lock back and remove the lock file (no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            try:
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    os.unlink(self.path)  # while still holding the lock: see acquire()
            except OSError:
                pass
        finally:
            os.close(fd)  # drops the flock

    def __del__(self) -> None:  # an object dropped without release() frees the directory
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __enter__(self) -> RunDirLock:
        message = self.acquire()
        if message:
            _stderr(message)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def read_lock_info(path: str | Path) -> LockInfo | None:
    """The holder recorded in a lock file, or ``None``."""
    try:
        return LockInfo.parse(Path(path).read_text(errors="replace"))
    except OSError:
        return None


def lock_holder(run_dir: str | Path) -> LockInfo | None:
    """The live process holding ``run_dir``'s lock, or ``None`` (free, stale or absent).

    A read-only probe: it never takes the lock, so it never disturbs a process starting.
    """
    path = Path(run_dir) / LOCK_NAME
    info = read_lock_info(path)
    if info is None:
        if path.is_file() and fcntl is not None and _flock_held(path):
            return LockInfo(0, "?", "another process", "?")
        return None
    if fcntl is not None:
        return info if _flock_held(path) else None
    return info if info.host != socket.gethostname() or pid_alive(info.pid) else None


def _flock_held(path: Path) -> bool:
    """Whether some process holds ``path``'s flock, tested without blocking anyone."""
    # /proc/locks lists every flock with the inode it is on (Linux); elsewhere assume held
    # when a live pid is recorded.
    try:
        inode = os.stat(path).st_ino
        locks = Path("/proc/locks").read_text()
    except OSError:
        info = read_lock_info(path)
        return info is not None and pid_alive(info.pid)
    dev = os.stat(path).st_dev
    needle = f"{os.major(dev):02x}:{os.minor(dev):02x}:{inode} "
    return any(("FLOCK" in line and needle in line + " ") for line in locks.splitlines())


def remove_stale_temps(run_dir: str | Path) -> list[Path]:
    """Delete temporary files of interrupted atomic writes in ``run_dir`` (and one level of
    subdirectories). Only call this while holding the directory's lock."""
    run_dir = Path(run_dir)
    removed = []
    for folder in [run_dir, *_subdirs(run_dir)]:
        for entry in _entries(folder):
            if entry.is_file() and _TEMP_PATTERN.match(entry.name):
                try:
                    entry.unlink()
                    removed.append(entry)
                except FileNotFoundError:
                    pass
    return removed


def holds_run(run_dir: str | Path, markers: Iterable[str] = RUN_MARKERS) -> bool:
    """Whether ``run_dir`` holds a run that could be continued (one of the ``markers``: a
    checkpoint or a summary)."""
    run_dir = Path(run_dir)
    return run_dir.is_dir() and any((run_dir / name).exists() for name in markers)


def _event_files(run_dir: Path) -> list[Path]:
    return [e for e in _entries(run_dir)
            if e.name.startswith("events.out.tfevents.") and e.is_file()]


def remove_run_files(run_dir: str | Path) -> list[Path]:
    """Delete the files a run wrote at the top of ``run_dir`` (checkpoints, configs,
    genotypes, pictures, summaries, TensorBoard events) and the event files of its direct
    subdirectories. Other files and folders are left alone."""
    run_dir = Path(run_dir)
    removed = []
    candidates = [e for e in _entries(run_dir) if _RUN_FILE_PATTERN.match(e.name)]
    for sub in _subdirs(run_dir):
        candidates += [e for e in _entries(sub) if e.name.startswith("events.out.tfevents.")]
    for entry in candidates:
        if entry.is_file() and entry.name != LOCK_NAME:
            try:
                entry.unlink()
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _subdirs(folder: Path) -> list[Path]:
    return [e for e in _entries(folder) if e.is_dir() and not e.is_symlink()]


def check_run_dir(run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
                  markers: Iterable[str] = RUN_MARKERS) -> None:
    """Before any work: refuse ``run_dir`` when another process uses it, or, for a new run
    (not ``resume``), when it holds a run and ``overwrite`` is not set. Writes nothing; the
    lock itself is taken later by :func:`open_run_dir`."""
    holder = lock_holder(run_dir)
    if holder is not None:
        raise RunDirBusy(f"run directory {run_dir} is in use by {holder.describe()}; wait for "
                         f"it to finish, stop it, or use another --out")
    if not resume and not overwrite and holds_run(run_dir, markers):
        raise RunDirOccupied(occupied_message(run_dir))


def occupied_message(run_dir: str | Path) -> str:
    """The one line for a new run in a directory that holds one."""
    return (f"{run_dir} holds a run: use --resume to continue or --out for a new run "
            f"(or --overwrite to replace it)")


class RunDir:
    """An open run directory: locked, cleaned, and (for ``overwrite``) emptied of the old run.

    Use :func:`open_run_dir`; call :meth:`close` when the run ends (or use ``with``).
    """

    def __init__(self, path: str | Path, lock: RunDirLock, *,
                 created: Path | None = None) -> None:
        self.path = Path(path)
        self.lock = lock
        # The top-most folder that opening created (None: the directory existed), and what
        # the directory held once opened: a refused run removes exactly what it added.
        self.created = created
        self.before = _tree(self.path)

    def close(self) -> None:
        """Release the lock (idempotent)."""
        self.lock.release()

    def discard(self) -> list[Path]:
        """For a run refused after opening (bad input found late): delete the files and
        folders written since :func:`open_run_dir` (top level and one level down), release
        the lock, and remove the directory and the parents opening created if they are
        empty now. Files that were there before stay. Returns the paths removed."""
        removed = []
        # Reverse order: a folder's entries ("sub/x") come before the folder ("sub").
        for name in sorted(_tree(self.path) - self.before, reverse=True):
            entry = self.path / name
            if entry.name == LOCK_NAME:
                continue
            try:
                if entry.is_dir() and not entry.is_symlink():
                    entry.rmdir()
                else:
                    entry.unlink()
                removed.append(entry)
            except OSError:  # a folder someone filled meanwhile: left as it is
                pass
        self.close()
        folder = self.path
        while self.created is not None:
            try:
                folder.rmdir()
            except OSError:
                break
            removed.append(folder)
            if folder == self.created:
                break
            folder = folder.parent
        return removed

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_run_dir(path: str | Path, *, resume: bool = False, overwrite: bool = False,
                 markers: Iterable[str] = RUN_MARKERS,
                 say: Printer | None = _stderr) -> RunDir:
    """Lock ``path``, remove stale temporary files and, for a new run, make sure it holds no
    other run (deleting the old run's files when ``overwrite``). ``say`` prints what was
    done (a stale lock taken over, temporary files or an old run removed); ``None``: quiet.

    Raises :class:`RunDirBusy` or :class:`RunDirOccupied` (one-line messages).
    """
    created = _first_missing(Path(path))
    lock = RunDirLock(path)
    message = lock.acquire()
    try:
        if message and say:
            say(message)
        temps = remove_stale_temps(path)
        if temps and say:
            say(f"removed {len(temps)} temporary file(s) left by an interrupted write in {path}")
        if not resume and holds_run(path, markers):
            if not overwrite:
                raise RunDirOccupied(occupied_message(path))
            removed = remove_run_files(path)
            if say:
                say(f"removed {len(removed)} file(s) of the previous run in {path}")
        elif not resume:  # a run that never checkpointed: its curves would mix with ours
            events = _event_files(Path(path))
            for event in events:
                event.unlink(missing_ok=True)
            if events and say:
                say(f"removed the TensorBoard events of a run in {path} that never reached "
                    f"its first checkpoint")
    except BaseException:
        lock.release()
        raise
    return RunDir(path, lock, created=created)


def _first_missing(path: Path) -> Path | None:
    """The top-most folder of ``path`` that does not exist yet (``None``: it exists)."""
    if path.exists() or path.is_symlink():
        return None
    missing = path
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    return missing


def _tree(folder: Path) -> set[str]:
    """Names in ``folder`` and in its (real, not linked) subfolders, as relative paths."""
    names = set()
    for entry in _entries(folder):
        names.add(entry.name)
        if entry.is_dir() and not entry.is_symlink():
            names.update(f"{entry.name}/{sub.name}" for sub in _entries(entry))
    return names
