"""A retraining's run directory: lock against a second process, refusing to mix runs,
--overwrite, settings kept on --resume, --resume before the first checkpoint, file modes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from pause_cli import PAUSE_RETRAIN_AFTER_STEPS

from robustnas.cli import main
from robustnas.config import read_yaml
from robustnas.io import load_checkpoint
from robustnas.rundir import LOCK_NAME
from robustnas.train import retrain
from robustnas.train.config import RetrainConfig

REPO = Path(__file__).resolve().parents[1]


def _tiny(out: Path, **changes) -> RetrainConfig:
    base = dict(genotype="DARTS_V2", dataset="digits", C=4, layers=3, batch_size=16, epochs=1,
                max_steps_per_epoch=2, eval_n=24, eval_steps=1, eval_batch_size=24, steps=1,
                device="cpu", seed=5, out=str(out), cutout=2)
    base.update(changes)
    return RetrainConfig(**base)


def _args(out: Path) -> list[str]:
    return ["retrain", "DARTS_V2", "--dataset", "digits", "--channels", "4", "--layers", "3",
            "--batch-size", "16", "--epochs", "2", "--eval-n", "24", "--eval-steps", "1",
            "--device", "cpu", "--seed", "5", "--cutout", "2", "--checkpoint-every", "3",
            "--set", "max_steps_per_epoch=4", "--set", "eval_batch_size=24",
            "--out", str(out), "--quiet"]


def _events(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name.startswith("events.out.tfevents")]


def test_second_process_is_refused_naming_the_first(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from robustnas.rundir import RunDirLock
            lock = RunDirLock(sys.argv[1])  # held while the object lives
            lock.acquire()
            print("locked", flush=True)
            time.sleep(120)
        """), str(out)],
        env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
        assert main(_args(out)) == 2
        err = capsys.readouterr().err
        assert f"in use by pid {holder.pid} on host" in err and len(err.splitlines()) == 1
        assert main(["retrain", "--resume", "--out", str(out), "--quiet"]) == 2
        assert f"in use by pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing else written


def test_new_run_refuses_a_run_overwrite_replaces_it_and_modes_follow_umask(tmp_path,
                                                                             capsys):
    out = tmp_path / "run"
    old_mask = os.umask(0o022)
    try:
        retrain(_tiny(out), show_progress=False)
        capsys.readouterr()
        args = _args(out)
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "holds a run: use --resume to continue or --out for a new run" in err
        assert len(err.strip().splitlines()) == 1
        assert main([*args, "--overwrite"]) == 0
        assert "previous run" in capsys.readouterr().err
        for name in ("config.yaml", "last.pt", "summary.json", "genotype.json"):
            assert os.stat(out / name).st_mode & 0o777 == 0o644, name
    finally:
        os.umask(old_mask)
    assert len(_events(out)) == 1 and not (out / LOCK_NAME).exists()
    assert load_checkpoint(out / "last.pt")["config"]["epochs"] == 2  # the new run's
    assert main([*args, "--overwrite", "--resume"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_resume_keeps_saved_settings_and_says_what_changes(tmp_path, capsys):
    out = tmp_path / "run"
    retrain(_tiny(out, device="cpu"), show_progress=False)
    capsys.readouterr()
    assert main(["retrain", "--resume", "--out", str(out), "--quiet"]) == 0
    assert "resume: changing" not in capsys.readouterr().err
    assert read_yaml(out / "config.yaml")["device"] == "cpu"
    assert main(["retrain", "--resume", "--out", str(out), "--quiet", "--eval-n", "16",
                 "--checkpoint-every", "1"]) == 0
    err = capsys.readouterr().err
    assert "resume: changing eval_n 24 -> 16" in err
    assert "resume: changing checkpoint_every 200 -> 1" in err
    saved = read_yaml(out / "config.yaml")
    assert (saved["eval_n"], saved["device"], saved["seed"]) == (16, "cpu", 5)
    other = tmp_path / "other"  # continuing into a directory that holds another run
    other.mkdir()
    (other / "last.pt").write_bytes(b"another run")
    assert main(["retrain", "--resume", str(out), "--out", str(other), "--quiet"]) == 2
    assert "holds a run" in capsys.readouterr().err
    assert (other / "last.pt").read_bytes() == b"another run"


def test_kill_before_first_checkpoint_then_resume_starts_from_scratch(tmp_path, capsys):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", PAUSE_RETRAIN_AFTER_STEPS, "2", *_args(out)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "PAUSED", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)  # after 2 steps; the first checkpoint is at step 3
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert not (out / "last.pt").exists() and (out / "config.yaml").exists()
    (out / ".last.pt.a1b2c3d4.tmp").write_bytes(b"\0" * 1000)  # a write cut short
    # the stop message's command, with one setting changed
    assert main(["retrain", "--resume", "--out", str(out), "--quiet", "--eval-n", "16"]) == 0
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "starting from scratch with its config.yaml" in err
    assert "stale lock" in err and f"pid {proc.pid}" in err and "temporary file" in err
    assert "resume: changing eval_n 24 -> 16" in err
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 2 and state["config"]["checkpoint_every"] == 3
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.endswith(".tmp")] and LOCK_NAME not in names
    assert len(_events(out)) == 1  # the killed attempt's events were removed
