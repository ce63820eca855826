"""A retraining's run directory: lock against a second process, refusing to mix runs,
--overwrite, settings kept on --resume, --resume before the first checkpoint, file modes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pause_cli import PAUSE_RETRAIN_AFTER_STEPS

from robustnas.cli import main
from robustnas.config import read_yaml
from robustnas.engine import on_step
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


# -- outputs that cannot be run directories, planted links, forged counters (issue 20) ------
def _one_line(code: int, err: str, expected: str) -> None:
    assert code == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and expected in err, err


def test_an_output_that_is_a_file_or_impossible_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    _one_line(main(_args(a_file)), capsys.readouterr().err, str(a_file))
    assert a_file.read_text() == "mine\n"
    proc = "/proc/robustnas-no-such-dir"
    search = ["search", "--dataset", "synthetic", "--channels", "4", "--layers", "3",
              "--batch-size", "16", "--device", "cpu", "--quiet", "--out", proc]
    _one_line(main(search), capsys.readouterr().err, proc)
    _one_line(main([*_args(tmp_path)[:-3], "--out", proc, "--quiet"]),
              capsys.readouterr().err, proc)


def test_a_planted_lock_link_is_refused_and_its_target_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (out / LOCK_NAME).symlink_to(victim)
    _one_line(main(_args(out)), capsys.readouterr().err, "symbolic link")
    assert victim.read_text() == "keep me\n"
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written


def test_forged_checkpoint_counters_are_refused(tmp_path, capsys):
    import torch

    out = tmp_path / "run"
    retrain(_tiny(out, epochs=2, max_steps_per_epoch=4), show_progress=False)
    capsys.readouterr()
    good = load_checkpoint(out / "last.pt")
    for epoch, step, what in ((2**70, 0, "epoch"), (1, -5, "step"), (1, 5, "step"),
                              (3, 0, "epoch"), ("1", 0, "epoch"), (1.5, 0, "epoch"),
                              (True, 0, "epoch"), (2, 1, "step")):
        forged = tmp_path / f"forged_{epoch}_{step}"
        forged.mkdir()
        torch.save({**good, "epoch": epoch, "step": step}, forged / "last.pt")
        code = main(["retrain", "--resume", "--out", str(forged), "--quiet"])
        _one_line(code, capsys.readouterr().err, what)
        assert sorted(p.name for p in forged.iterdir()) == ["last.pt"], (epoch, step)


def test_a_run_refused_after_its_directory_was_opened_leaves_nothing(tmp_path):
    """Issue 20 item 4: what a refused run wrote (config, genotype, TensorBoard events) is
    removed, and the folders it created; files that were there before stay."""
    from robustnas.errors import UsageError

    def refuse(trainer):  # a user's callback that rejects the run at its first step
        raise UsageError("refused by the callback")

    new = tmp_path / "new" / "run"
    with pytest.raises(UsageError, match="refused by the callback"):
        retrain(_tiny(new), show_progress=False, callbacks=[on_step(refuse)])
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("mine\n")
    with pytest.raises(UsageError):
        retrain(_tiny(mine), show_progress=False, callbacks=[on_step(refuse)])
    assert sorted(p.name for p in mine.iterdir()) == ["notes.md"]
