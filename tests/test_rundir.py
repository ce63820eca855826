"""Run directories: the lock (two real processes, stale locks of killed ones), stale
temporary files, refusing to mix runs, --overwrite, and file modes that honour the umask."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from robustnas.errors import RobustnasError
from robustnas.io import atomic_torch_save, atomic_write_bytes, atomic_write_text, file_mode
from robustnas.rundir import (
    LOCK_NAME,
    RunDirBusy,
    RunDirLock,
    RunDirOccupied,
    check_run_dir,
    holds_run,
    lock_holder,
    open_run_dir,
    remove_stale_temps,
)

REPO = Path(__file__).resolve().parents[1]

HOLDER = textwrap.dedent("""
    import sys, time
    from robustnas.rundir import RunDirLock
    lock = RunDirLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


def _holder(run_dir: Path) -> subprocess.Popen:
    """Another real process that takes the lock of ``run_dir`` and keeps it."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked", proc.stderr.read()
    return proc


def test_second_process_is_refused_naming_the_first(tmp_path):
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        assert lock_holder(run).pid == holder.pid
        with pytest.raises(RunDirBusy) as info:
            RunDirLock(run).acquire(retries=2)
        message = str(info.value)
        assert f"pid {holder.pid}" in message and "started" in message
        assert "robustnas.rundir" in message or "-c" in message  # the holder's command
        assert "\n" not in message
        with pytest.raises(RunDirBusy, match=f"pid {holder.pid}"):
            check_run_dir(run, resume=True)
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_process_is_stale_and_taken_over(tmp_path):
    run = tmp_path / "run"
    holder = _holder(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (run / LOCK_NAME).is_file()  # a kill leaves the lock file behind
    assert lock_holder(run) is None
    check_run_dir(run)  # not busy: the process is gone
    lock = RunDirLock(run)
    message = lock.acquire()
    assert message is not None and "stale" in message and f"pid {holder.pid}" in message
    assert "no longer running" in message
    assert lock_holder(run).pid == os.getpid()
    lock.release()
    assert not (run / LOCK_NAME).exists() and lock_holder(run) is None


def test_released_lock_is_free_without_a_stale_message(tmp_path):
    with RunDirLock(tmp_path / "run"):
        pass
    lock = RunDirLock(tmp_path / "run")
    assert lock.acquire() is None
    lock.release()


def test_stale_temporary_files_are_removed(tmp_path):
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    stale = [run / ".last.pt.k3j_x9a1.tmp", run / ".checkpoint.pt.abcd1234.tmp",
             run / ".write-test-q8r7s6", run / "sub" / ".genotype.json.zz99yy88.tmp"]
    kept = [run / "last.pt", run / "notes.tmp", run / ".hidden"]
    for path in stale + kept:
        path.write_bytes(b"x" * 10)
    assert sorted(remove_stale_temps(run)) == sorted(stale)
    assert all(p.exists() for p in kept)


def test_open_refuses_a_run_and_overwrite_replaces_it(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "checkpoint.pt", "genotype.json", "normal.png",
                 "events.out.tfevents.1.host.1.0", ".checkpoint.pt.a1b2c3d4.tmp"):
        (run / name).write_text("old")
    (run / "my_notes.md").write_text("mine")
    assert holds_run(run)
    with pytest.raises(RunDirOccupied, match="holds a run: use --resume to continue or --out"):
        check_run_dir(run)
    with pytest.raises(RunDirOccupied, match="--overwrite"):
        open_run_dir(run, say=None)
    assert lock_holder(run) is None  # a refusal does not keep the lock
    said: list[str] = []
    with open_run_dir(run, overwrite=True, say=said.append):
        assert lock_holder(run).pid == os.getpid()
    assert sorted(p.name for p in run.iterdir()) == ["my_notes.md"]
    assert any("previous run" in s for s in said)
    with open_run_dir(run, say=None):  # nothing left of a run: a new run may start
        pass


def test_a_run_that_never_checkpointed_is_replaced_without_mixing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "genotype.json", "events.out.tfevents.1.host.1.0"):
        (run / name).write_text("old")
    assert not holds_run(run)
    check_run_dir(run)  # nothing to continue: a new run may start here
    said: list[str] = []
    with open_run_dir(run, say=said.append):
        pass
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "genotype.json"]
    assert any("never reached its first checkpoint" in s for s in said)


def test_resume_keeps_the_run_and_cleans_temps(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_text("old")
    (run / ".last.pt.xyz12345.tmp").write_text("half")
    with open_run_dir(run, resume=True, say=None):
        pass
    assert sorted(p.name for p in run.iterdir()) == ["last.pt"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert file_mode() == 0o666 & ~umask
        atomic_write_text(tmp_path / "a.yaml", "x: 1\n")
        atomic_write_bytes(tmp_path / "b.png", b"\x89PNG")
        atomic_torch_save({"a": 1}, tmp_path / "c.pt")
        with open(tmp_path / "plain.txt", "w") as handle:  # what a normal open() gives
            handle.write("x")
    finally:
        os.umask(old)
    want = os.stat(tmp_path / "plain.txt").st_mode & 0o777
    assert want == 0o666 & ~umask
    for name in ("a.yaml", "b.png", "c.pt"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == want, name


def test_lock_holder_probe_does_not_disturb_acquire(tmp_path):
    run = tmp_path / "run"
    lock = RunDirLock(run)
    lock.acquire()
    t0 = time.time()
    for _ in range(20):
        assert lock_holder(run).pid == os.getpid()
    assert time.time() - t0 < 5
    lock.release()


STEP = textwrap.dedent("""
    import time
    from robustnas.runtime import graceful_stop
    with graceful_stop() as stop:
        print("ready", flush=True)
        time.sleep(60)  # one long training step
        print("step finished", flush=True)
""")


def test_ctrl_c_says_stopping_at_once_not_after_the_step():
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", STEP], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        line = ""
        while not line.strip():
            line = proc.stderr.readline()
        assert line.startswith("stopping after this step")
        assert proc.poll() is None  # said while the step still runs
    finally:
        proc.kill()
        proc.wait()


# -- untrusted run directories (issue 20, items 6 and 8) ------------------------------------
def test_a_lock_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    (run / LOCK_NAME).symlink_to(victim)
    with pytest.raises(RobustnasError, match="symbolic link") as info:
        open_run_dir(run, say=None)
    assert "\n" not in str(info.value) and LOCK_NAME in str(info.value)
    assert victim.read_text() == "keep me\n"  # never written through the link
    assert (run / LOCK_NAME).is_symlink()  # and the link is left for the user to inspect
    dangling = tmp_path / "run2"
    dangling.mkdir()
    (dangling / LOCK_NAME).symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(RobustnasError, match="symbolic link"):
        RunDirLock(dangling).acquire()
    assert not (tmp_path / "created-through-the-link").exists()


def test_a_lock_that_is_not_a_regular_file_is_refused(tmp_path):
    run = tmp_path / "run"
    (run / LOCK_NAME).mkdir(parents=True)
    with pytest.raises(RobustnasError, match="not a regular file"):
        RunDirLock(run).acquire()


def test_an_output_that_cannot_be_a_directory_is_one_line(tmp_path, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    for bad in (a_file, a_file / "below", Path("/proc/robustnas-no-such-dir")):
        with pytest.raises(RobustnasError, match="cannot create run directory") as info:
            open_run_dir(bad, say=None)
        assert "\n" not in str(info.value)
    assert a_file.read_text() == "mine\n"
    real_mkdir = os.mkdir

    def read_only(path, *args, **kwargs):  # a read-only file system, without mounting one
        if str(path).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    with pytest.raises(RobustnasError, match="Read-only file system"):
        open_run_dir(tmp_path / "ro" / "run", say=None)
