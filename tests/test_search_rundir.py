"""A search's run directory: refusing to mix runs, --overwrite, two processes on one --out,
--resume without a checkpoint, settings kept on resume, mid-epoch checkpoints."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import pytest
import torch
from pause_cli import start_paused_search

from robustnas.cli import main
from robustnas.config import read_yaml
from robustnas.io import load_checkpoint
from robustnas.rundir import LOCK_NAME
from robustnas.search.api import run_search
from robustnas.search.config import SearchConfig
from robustnas.search.resume import apply_optimizer_settings, resumed_search_config
from robustnas.search.searcher import Searcher

TINY = ["--dataset", "synthetic", "--channels", "4", "--layers", "3", "--batch-size", "16",
        "--seed", "3", "--set", "draw_every=0", "--quiet"]


def _data(n_train: int) -> list[str]:
    return ["--set", f"dataset_options={{n_train: {n_train}, n_test: 32}}"]


def _tiny(out: Path, **changes) -> SearchConfig:
    base = dict(dataset="synthetic", dataset_options={"n_train": 96, "n_test": 32}, C=4,
                layers=3, batch_size=16, epochs=1, device="cpu", seed=3, draw_every=0,
                max_steps_per_epoch=1, out=str(out))
    base.update(changes)
    return SearchConfig(**base)


def test_new_run_refuses_a_run_and_overwrite_replaces_it(tmp_path, capsys):
    out = tmp_path / "run"
    run_search(_tiny(out), show_progress=False)
    first = {p.name for p in out.iterdir()}
    capsys.readouterr()
    args = ["search", *TINY, *_data(96), "--device", "cpu", "--set", "max_steps_per_epoch=1",
            "--epochs", "1", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds a run: use --resume to continue or --out for a new run" in err
    assert len(err.strip().splitlines()) == 1
    assert {p.name for p in out.iterdir()} == first  # untouched
    assert main([*args, "--overwrite"]) == 0
    assert "previous run" in capsys.readouterr().err
    events = [p for p in out.iterdir() if p.name.startswith("events.out.tfevents")]
    assert len(events) == 1  # no TensorBoard mix of two runs
    assert not (out / LOCK_NAME).exists()  # released at the end
    assert main([*args, "--overwrite", "--resume"]) == 2
    assert "give one of them" in capsys.readouterr().err


@pytest.mark.slow  # 8 CPU s: three searches
def test_resume_keeps_saved_settings_and_says_what_changes(tmp_path, capsys):
    out = tmp_path / "run"
    run_search(_tiny(out, device="cpu", epochs=2), show_progress=False)
    capsys.readouterr()
    # the stop message's command: nothing given, so nothing changes (device stays cpu)
    assert main(["search", "--resume", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "resume: changing" not in err
    assert read_yaml(out / "config.yaml")["device"] == "cpu"
    assert main(["search", "--resume", "--out", str(out), "--quiet", "--set", "w_lr=0.01",
                 "--set", "arch_lr=0.002"]) == 0
    err = capsys.readouterr().err
    assert "resume: changing w_lr 0.025 -> 0.01" in err
    assert "resume: changing arch_lr 0.0003 -> 0.002" in err
    saved = read_yaml(out / "config.yaml")
    assert (saved["w_lr"], saved["arch_lr"], saved["device"]) == (0.01, 0.002, "cpu")
    assert main(["search", "--resume", "--out", str(out), "--quiet", "--channels", "8"]) == 2
    assert "cannot change C when resuming" in capsys.readouterr().err
    # changed learning rates reach the optimisers
    config, state = resumed_search_config(out, {"w_lr": 0.05, "w_lr_min": 0.002,
                                                "arch_lr": 0.01, "arch_beta1": 0.9})
    assert state is not None
    searcher = Searcher(config, show_progress=False, resume=True)
    try:
        group = searcher.w_optimizer.param_groups[0]
        # cosine at epoch 2 of 2 from the new w_lr to the new w_lr_min
        assert group["lr"] == pytest.approx(0.002) and searcher.scheduler.base_lrs == [0.05]
        assert searcher.scheduler.get_last_lr() == [group["lr"]]
        arch = searcher.arch_optimizer.param_groups[0]
        assert arch["lr"] == 0.01 and arch["betas"] == (0.9, 0.999)
    finally:
        searcher.close()
    config, _ = resumed_search_config(out, {})
    searcher = Searcher(config, show_progress=False, resume=True)
    try:  # nothing changed: the loaded state is kept exactly
        assert searcher.w_optimizer.param_groups[0]["lr"] == \
            state["w_optimizer"]["param_groups"][0]["lr"]
    finally:
        searcher.close()


def test_new_learning_rate_restarts_the_cosine_value_mid_schedule():
    w = torch.nn.Parameter(torch.zeros(2))
    a = torch.nn.Parameter(torch.zeros(2))
    w_opt = torch.optim.SGD([w], lr=0.025, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=4, eta_min=0.001)
    for _ in range(2):  # epoch 2 of 4: half way
        w_opt.step()
        sched.step()
    arch_opt = torch.optim.Adam([a], lr=3e-4)
    config = SearchConfig(w_lr=0.1, w_lr_min=0.0, w_momentum=0.5, arch_lr=0.02)
    apply_optimizer_settings(config, w_opt, sched, arch_opt)
    assert w_opt.param_groups[0]["lr"] == pytest.approx(0.05)  # (0.1 + 0) / 2
    assert w_opt.param_groups[0]["momentum"] == 0.5 and arch_opt.param_groups[0]["lr"] == 0.02
    w_opt.step()
    sched.step()  # the schedule goes on from the new values: epoch 3 of 4
    assert w_opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 + math.cos(math.pi * 3 / 4)) / 2)


@pytest.mark.slow  # 6 CPU s: two search processes and a resume
def test_two_processes_then_kill_before_first_checkpoint_then_resume(tmp_path, capsys):
    """A second process is refused naming the first; the first is SIGKILLed before its
    first checkpoint; --resume then takes over the stale lock, removes temporary files and
    starts from scratch with the run's saved settings (changed where given)."""
    out = tmp_path / "run"
    # Paused after its first step: it holds the lock and has no checkpoint yet, whatever
    # the machine's speed (no polling for files).
    first = start_paused_search("0:0", [*TINY, *_data(960), "--device", "cpu", "--epochs",
                                        "1", "--out", str(out)], tmp_path,
                                tmp_path / "first.err")
    try:
        assert (out / "config.yaml").is_file()  # written under the lock
        # this test's process is the second one
        code = main(["search", *TINY, *_data(96), "--device", "cpu", "--seed", "12",
                     "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"in use by pid {first.pid} on host" in err and "started" in err, err
        assert len(err.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    assert not (out / "checkpoint.pt").exists()
    assert (out / LOCK_NAME).exists()
    (out / ".checkpoint.pt.x1y2z3w4.tmp").write_bytes(b"\0" * 1000)  # a write cut short
    code = main(["search", "--resume", "--out", str(out), "--quiet", "--set",
                 "max_steps_per_epoch=1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "no checkpoint" in err and "starting from scratch" in err
    assert "stale lock" in err and f"pid {first.pid}" in err
    assert "temporary file" in err
    assert "resume: changing max_steps_per_epoch 0 -> 1" in err
    saved = read_yaml(out / "config.yaml")
    assert (saved["seed"], saved["dataset_options"]["n_train"], saved["device"]) == (3, 960,
                                                                                      "cpu")
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.endswith(".tmp")] and LOCK_NAME not in names
    assert len([n for n in names if n.startswith("events.out")]) == 1
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1


def _alphas(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / "checkpoint.pt")["model"]["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("alpha_")}


@pytest.mark.slow
def test_killed_mid_epoch_resumes_from_a_mid_epoch_checkpoint(tmp_path):
    args = [*TINY, *_data(192), "--device", "cpu", "--epochs", "1", "--checkpoint-every", "2",
            "--threads", "1"]  # bit-identity across processes needs one thread count
    # Paused after step 2 (0-based), past the mid-epoch checkpoint of steps 0-1, then killed:
    # that step is lost and the run resumes from the checkpoint at step 2.
    victim = start_paused_search("0:2", [*args, "--out", str(tmp_path / "run")], tmp_path,
                                 tmp_path / "victim.err")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    ckpt = tmp_path / "run" / "checkpoint.pt"
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["step"]) == (0, 2)
    assert main(["search", *args, "--out", str(tmp_path / "ref")]) == 0
    assert main(["search", "--resume", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    ref, run = _alphas(tmp_path / "ref"), _alphas(tmp_path / "run")
    assert ref.keys() == run.keys()
    for name, value in ref.items():
        assert torch.equal(value, run[name]), name


def test_checkpoint_every_must_not_be_negative(tmp_path, capsys):
    assert main(["search", *TINY, "--checkpoint-every", "-1", "--out", str(tmp_path / "r")]) == 2
    assert "checkpoint_every (--checkpoint-every) must be at least 0" in capsys.readouterr().err


@pytest.mark.slow  # three search set-ups, ~3 s each on a loaded 2-core machine
def test_forged_search_checkpoint_counters_are_refused_before_writing(tmp_path, capsys):
    """Issue 20 item 6: a checkpoint is untrusted input (epoch 2**70, step -5); the other
    malformed counters are covered by test_train_rundir, which shares the check."""
    searcher = Searcher(_tiny(tmp_path / "run"), show_progress=False)  # 1 epoch of 1 step
    try:
        good = torch.load(searcher.save_checkpoint(), weights_only=True)
    finally:
        searcher.close()
    capsys.readouterr()
    for epoch, step, what in ((2**70, 0, "epoch"), (0, -5, "step")):
        forged = tmp_path / f"forged_{epoch}_{step}"
        forged.mkdir()
        torch.save({**good, "epoch": epoch, "step": step}, forged / "checkpoint.pt")
        code = main(["search", "--resume", "--out", str(forged), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert f"its {what} counter" in err, err
        assert sorted(p.name for p in forged.iterdir()) == ["checkpoint.pt"], (epoch, step)
