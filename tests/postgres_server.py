"""A real, local PostgreSQL server for the tests (study storage on ``postgresql://``).

Where the server comes from (see the ``postgres_server`` fixture in ``conftest.py``):

- ``$ROBUSTNAS_TEST_POSTGRES``: the SQLAlchemy URL of a running server whose user may
  create databases (``.ci/run`` starts one and exports it). The URL's database is only
  used to create and drop the tests' own databases. With
  ``$ROBUSTNAS_TEST_POSTGRES_DATADIR`` (its data directory; ``.ci/run`` exports it) and
  optionally ``$ROBUSTNAS_TEST_POSTGRES_BINDIR`` (where ``pg_ctl`` is), the tests can also
  restart, stop and start it.
- otherwise a throwaway cluster of our own: ``initdb`` into a fresh directory under the
  system temp dir, ``pg_ctl start`` on a free port of 127.0.0.1 with password auth, stopped
  and removed at the end of the session.

PostgreSQL refuses to run as root, so as root every ``initdb``/``pg_ctl`` runs as the
owner of the data directory (the ``postgres`` system user for a cluster of our own) via
``runuser``. The server always logs to ``<datadir>/server.log`` (``.ci/run`` does the
same): ``pg_ctl start`` must be given a log file, otherwise the server inherits pg_ctl's
stdout and a captured pipe would never close.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ENV_URL = "ROBUSTNAS_TEST_POSTGRES"
ENV_DATADIR = "ROBUSTNAS_TEST_POSTGRES_DATADIR"
ENV_BINDIR = "ROBUSTNAS_TEST_POSTGRES_BINDIR"
ENV_REQUIRE = "ROBUSTNAS_REQUIRE_POSTGRES"

# Appended to postgresql.conf (by .ci/run too) rather than passed on pg_ctl's command line,
# so that a later plain `pg_ctl start -D DATADIR` comes back on the same port and address.
# No Unix socket: clients use TCP with a password, and no socket file can clash with
# another cluster's. Durability settings off: throwaway data, and they make commits cheap.
SERVER_SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be had (or controlled) here; the message says why."""


def required() -> bool:
    """Whether a missing server is a failure (CI) rather than a reason to skip."""
    return os.environ.get(ENV_REQUIRE, "") not in ("", "0")


def unavailable(reason: str):
    """Skip the calling test for ``reason``, or fail it where a server is required."""
    if required():
        pytest.fail(f"PostgreSQL is required ({ENV_REQUIRE}=1) but {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}")


def find_bindir() -> Path | None:
    """The directory holding ``pg_ctl`` and ``initdb``: ``$ROBUSTNAS_TEST_POSTGRES_BINDIR``,
    else ``pg_ctl`` on PATH (symlinks followed), else Debian's newest
    ``/usr/lib/postgresql/<version>/bin``."""
    if os.environ.get(ENV_BINDIR):
        return Path(os.environ[ENV_BINDIR])
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).resolve().parent / "initdb").exists():
        return Path(on_path).resolve().parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                    key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)])
    return debian[-1].parent if debian else None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(cmd: list[str], owner: str) -> list[str]:
    """``cmd`` run as ``owner`` when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() == 0 and owner != "root":
        return ["runuser", "-u", owner, "--", *cmd]
    return cmd


def _run(cmd: list[str], what: str, log: Path | None = None, timeout: float = 120) -> None:
    # cwd="/": the postgres user may not be able to enter the test's working directory.
    try:
        proc = subprocess.run(cmd, cwd="/", stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:  # no such binary, no runuser, hung
        raise PostgresUnavailable(f"{what} failed ({' '.join(cmd)}): {e}") from e
    if proc.returncode != 0:
        tail = ""
        if log is not None and log.exists():
            tail = "\nserver log (last lines):\n" + "\n".join(
                log.read_text(errors="replace").splitlines()[-15:])
        raise PostgresUnavailable(f"{what} failed ({' '.join(cmd)}): exit {proc.returncode}\n"
                                  f"{proc.stdout}{proc.stderr}{tail}")


class PostgresServer:
    """One PostgreSQL server for the test session.

    - ``url``: the SQLAlchemy URL (``str``, password included) of its maintenance database.
    - ``url_for_new_database() -> str``: create a fresh, empty, uniquely named database
      and return its URL; ``drop_database(url)`` drops it again (closing its connections).
    - ``restart()`` (``pg_ctl restart -m fast``), ``stop()`` (``-m fast``), ``start()``,
      ``outage(seconds)`` (stop, sleep, start), ``is_running()``: each blocks until done;
      to hit a trial mid-run, call them from the objective or from a thread.
      They need the data directory (``controllable``); without it the calling test is
      skipped (failed under ``$ROBUSTNAS_REQUIRE_POSTGRES=1``).
    """

    def __init__(self, url: str, datadir: Path | None, bindir: Path | None,
                 owned_base: Path | None = None):
        from sqlalchemy.engine import make_url

        self._url = make_url(url)
        self.datadir = datadir
        self.bindir = bindir
        self._owned_base = owned_base  # our own throwaway cluster: removed by close()
        # pg_ctl runs as the data directory's owner (PostgreSQL refuses root).
        self._owner = None if datadir is None else pwd.getpwuid(datadir.stat().st_uid).pw_name

    @property
    def url(self) -> str:
        return self._url.render_as_string(hide_password=False)

    @property
    def controllable(self) -> bool:
        return self.datadir is not None and self.bindir is not None

    @property
    def log(self) -> Path | None:
        return None if self.datadir is None else self.datadir / "server.log"

    # --- where the server comes from -------------------------------------------------
    @classmethod
    def from_environment(cls) -> PostgresServer | None:
        """The server named by ``$ROBUSTNAS_TEST_POSTGRES``, or None when unset."""
        url = os.environ.get(ENV_URL)
        if not url:
            return None
        datadir = os.environ.get(ENV_DATADIR)
        server = cls(url, Path(datadir) if datadir else None, find_bindir())
        server.wait_until_accepting(timeout=10)
        return server

    @classmethod
    def start_throwaway(cls) -> PostgresServer:
        """``initdb`` a new cluster in a temp dir and start it on a free 127.0.0.1 port."""
        bindir = find_bindir()
        if bindir is None or not (bindir / "initdb").exists():
            raise PostgresUnavailable("no PostgreSQL binaries (initdb, pg_ctl) found "
                                      f"(set {ENV_URL}, or apt-get install postgresql)")
        owner = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        try:
            owner_entry = pwd.getpwnam(owner)
        except KeyError:
            raise PostgresUnavailable("running as root and there is no 'postgres' system "
                                      "user to run the server as") from None
        # Directly under the temp dir: pytest's own tmp dirs are 0700 root, closed to postgres.
        base = Path(tempfile.mkdtemp(prefix="robustnas-postgres-"))
        try:
            os.chown(base, owner_entry.pw_uid, owner_entry.pw_gid)
            password = secrets.token_hex(12)
            pwfile = base / "pwfile"
            pwfile.write_text(password + "\n")
            os.chown(pwfile, owner_entry.pw_uid, owner_entry.pw_gid)
            datadir = base / "data"
            # --no-sync: nothing to make durable in a throwaway cluster; C locale: the same
            # cluster whatever locales this machine has.
            _run(_as_owner([str(bindir / "initdb"), "-D", str(datadir), "-U", "robustnas",
                            f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                            "--locale=C", "--no-sync"], owner), "initdb")
            pwfile.unlink()
            with open(datadir / "postgresql.conf", "a") as conf:
                conf.write(SERVER_SETTINGS)
            server = None
            for attempt in range(3):  # the free port may be taken before the server binds it
                port = free_port()
                with open(datadir / "postgresql.conf", "a") as conf:
                    conf.write(f"port = {port}\n")  # the last setting of a name wins
                server = cls(f"postgresql+psycopg://robustnas:{password}@127.0.0.1:{port}"
                             "/postgres", datadir, bindir, owned_base=base)
                try:
                    server.start()
                    break
                except PostgresUnavailable:
                    if attempt == 2:
                        raise
            server.wait_until_accepting(timeout=10)
            return server
        except BaseException:
            _stop_quietly(bindir, base / "data")
            shutil.rmtree(base, ignore_errors=True)
            raise

    def close(self) -> None:
        """Stop and remove a cluster of our own; leave someone else's server running."""
        if self._owned_base is not None:
            _stop_quietly(self.bindir, self.datadir)
            shutil.rmtree(self._owned_base, ignore_errors=True)
        elif self.controllable and not self.is_running():
            self.start()  # as we found it

    # --- databases -------------------------------------------------------------------
    def _admin(self, sql: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        # A fresh connection each time (NullPool): the server may have restarted meanwhile.
        engine = sa.create_engine(self._url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(sql))
        finally:
            engine.dispose()

    def url_for_new_database(self) -> str:
        """Create an empty database with a unique name; its URL, password included."""
        name = f"robustnas_test_{uuid.uuid4().hex[:16]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self._url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (made by :meth:`url_for_new_database`), closing
        whatever connections a test left open to it; start the server first if it is down."""
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        assert name and name.startswith("robustnas_test_"), name
        if self.controllable and not self.is_running():
            self.start()
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def wait_until_accepting(self, timeout: float) -> None:
        """Block until a connection succeeds (a started server may still be recovering)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._admin("SELECT 1")
                return
            except Exception as e:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(
                        f"cannot connect to {self._url!r}: {type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
                time.sleep(0.1)

    # --- the server process ------------------------------------------------------------
    def _pg_ctl(self, *args: str) -> list[str]:
        if not self.controllable:
            unavailable(f"{ENV_URL} is set without {ENV_DATADIR}, so the tests cannot "
                        "restart, stop or start that server")
        return _as_owner([str(self.bindir / "pg_ctl"), *args, "-D", str(self.datadir)],
                         self._owner)

    def is_running(self) -> bool:
        cmd = self._pg_ctl("status")
        return subprocess.run(cmd, cwd="/", stdin=subprocess.DEVNULL,
                              capture_output=True).returncode == 0

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        _run(self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log)), "pg_ctl start",
             self.log)
        self.wait_until_accepting(timeout=30)

    def stop(self) -> None:
        """Stop the server (fast: open connections are closed, transactions rolled back)."""
        _run(self._pg_ctl("stop", "-w", "-t", "60", "-m", "fast"), "pg_ctl stop", self.log)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every open connection breaks; data stays."""
        _run(self._pg_ctl("restart", "-w", "-t", "60", "-m", "fast", "-l", str(self.log)),
             "pg_ctl restart", self.log)
        self.wait_until_accepting(timeout=30)

    def outage(self, seconds: float) -> None:
        """Stop the server, keep it down ``seconds``, start it again (blocks throughout)."""
        self.stop()
        time.sleep(seconds)
        self.start()


def _stop_quietly(bindir: Path | None, datadir: Path | None) -> None:
    if bindir is None or datadir is None or not (datadir / "postmaster.pid").exists():
        return
    owner = pwd.getpwuid(datadir.stat().st_uid).pw_name
    subprocess.run(_as_owner([str(bindir / "pg_ctl"), "stop", "-D", str(datadir), "-m",
                              "immediate", "-w"], owner),
                   cwd="/", stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
