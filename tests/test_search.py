"""Search end to end: outputs, resume after SIGKILL/SIGINT, derive, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from pause_cli import resume_paused, start_paused_search

from robustnas.cli import main
from robustnas.io import load_checkpoint
from robustnas.search.api import run_search
from robustnas.search.config import SearchConfig
from robustnas.space.darts.catalogue import load_genotype

TINY = ["--dataset", "synthetic", "--channels", "4", "--layers", "3", "--batch-size", "16",
        "--device", "cpu", "--seed", "3", "--set", "dataset_options={n_train: 96, n_test: 32}",
        "--set", "draw_every=0"]


def tiny_config(out: Path, **changes) -> SearchConfig:
    base = dict(dataset="synthetic", dataset_options={"n_train": 96, "n_test": 32}, C=4,
                layers=3, batch_size=16, epochs=2, warmup_epochs=1, device="cpu", seed=3,
                out=str(out))
    base.update(changes)
    return SearchConfig(**base)


@pytest.mark.slow  # 6-7 CPU s: a search that draws the α heatmaps and cells
def test_search_leaves_genotype_pictures_events_and_config(tmp_path):
    result = run_search(tiny_config(tmp_path / "run"), show_progress=False)
    run = result.run_dir
    geno = load_genotype(run / "genotype.json")
    assert geno == result.genotype
    prov = geno.provenance
    assert prov["dataset"] == "synthetic" and prov["seed"] == 3 and prov["epoch"] == 2
    assert prov["regularizer"] == "none"
    assert len(prov["alpha_softmax"]["normal"]) == 14
    for name in ("normal.png", "normal.svg", "reduction.png", "reduction.svg", "config.yaml",
                 "checkpoint.pt"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*"))
    assert len(result.history) == 2 and not result.history[0]["arch_updates"]
    assert result.history[1]["arch_updates"]


@pytest.mark.slow  # 6-7 CPU s: a search that draws the α heatmaps and cells
def test_tensorboard_curves_hold_the_promised_tags(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_search(tiny_config(tmp_path / "run", draw_every=1), show_progress=False)
    acc = EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    for tag in ("train/loss", "train/acc", "val/loss", "val/acc", "lr/weights", "lr/arch",
                "time/epoch_seconds", "time/images_per_second",
                "genotype/skip_connect_normal"):
        assert tag in scalars, tag
    assert {"alpha/normal", "alpha/reduce", "cell/normal", "cell/reduce"} <= set(
        acc.Tags()["images"])


def test_warmup_keeps_alpha_fixed(tmp_path):
    result = run_search(tiny_config(tmp_path / "run", epochs=1, warmup_epochs=1,
                                    draw_every=0), show_progress=False)  # pictures: 2 s
    ckpt = load_checkpoint(result.run_dir / "checkpoint.pt")
    torch.manual_seed(3)
    from robustnas.space.darts.supernet import SuperNet

    # α is drawn right after the model weights; re-create the initial α with the same seed
    fresh = SuperNet(C=4, num_classes=10, layers=3, in_channels=3)
    assert fresh.alpha_normal.shape == ckpt["model"]["state_dict"]["alpha_normal"].shape
    assert ckpt["arch_optimizer"]["state"] == {}  # Adam never stepped during warm-up


def _cli(args: list[str], cwd: Path) -> subprocess.Popen:
    # One thread each: the reference and the victim run side by side on a 2-core machine,
    # and oversubscribed OpenMP threads slow both down many times over.
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]),
               OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "robustnas", "search", *args, "--quiet"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _alphas(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / "checkpoint.pt")["model"]["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("alpha_")}


@pytest.mark.slow  # three tiny searches, 35-57 s on 2 busy cores
@pytest.mark.parametrize("kill_signal", [signal.SIGKILL, signal.SIGINT])
def test_killed_search_resumes_to_the_same_result(tmp_path, kill_signal):
    args = TINY + ["--epochs", "4", "--warmup-epochs", "1"]
    reference = _cli(args + ["--out", str(tmp_path / "ref")], tmp_path)
    # Paused after step 1 of epoch 1 (0-based; 3 steps an epoch), past epoch 0's checkpoint:
    # the signal lands mid-epoch however fast or slow the machine is.
    victim = start_paused_search("1:1", args + ["--out", str(tmp_path / "run"), "--quiet"],
                                 tmp_path, tmp_path / "victim.err")
    watchdog = threading.Timer(300, victim.kill)  # never hang the suite
    watchdog.start()
    try:
        victim.send_signal(kill_signal)
        if kill_signal == signal.SIGINT:
            resume_paused(victim)  # finish the step, save, exit 130
        victim.communicate(timeout=120)
    finally:
        watchdog.cancel()
    err = (tmp_path / "victim.err").read_text()
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    if kill_signal == signal.SIGINT:
        assert victim.returncode == 130, err
        assert (state["epoch"], state["step"]) == (1, 2)  # the step in progress was kept
    else:
        assert victim.returncode == -signal.SIGKILL, err
        assert (state["epoch"], state["step"]) == (1, 0)  # epoch 0's end-of-epoch checkpoint
    assert reference.wait(timeout=300) == 0, reference.communicate()[1]
    resumed = _cli(args + ["--out", str(tmp_path / "run"), "--resume"], tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    ref_geno = load_genotype(tmp_path / "ref" / "genotype.json")
    assert load_genotype(tmp_path / "run" / "genotype.json") == ref_geno
    for name, value in _alphas(tmp_path / "ref").items():
        assert torch.equal(value, _alphas(tmp_path / "run")[name]), name


def test_derive_from_checkpoint(tmp_path, capsys):
    # No TensorBoard pictures (2 s of drawing): derive draws the cells itself.
    run_search(tiny_config(tmp_path / "run", epochs=1, warmup_epochs=0, draw_every=0),
               show_progress=False)
    out = tmp_path / "derived" / "g.json"
    assert main(["derive", str(tmp_path / "run" / "checkpoint.pt"), "-o", str(out)]) == 0
    geno = load_genotype(out)
    assert geno == load_genotype(tmp_path / "run" / "genotype.json")
    assert geno.provenance["epoch"] == 1
    assert (tmp_path / "derived" / "g_normal.png").is_file()
    assert "written:" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--regularizer", "bogus"], "unknown regularizer 'bogus'"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--set", "no_such_option=1"], "unknown option 'no_such_option'"),
    (["--epochs", "0"], "epochs (--epochs) must be at least 1"),
    (["--config", "missing.yaml"], "config file missing.yaml does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    code = main(["search", *TINY, "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()  # nothing half-written left behind


def test_missing_dataset_files_say_where_to_put_them(tmp_path, capsys):
    code = main(["search", "--dataset", "cifar10", "--data-root", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "cifar-10-batches-py" in err and len(err.strip().splitlines()) == 1


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["search", *TINY, "--out", str(blocker / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "not writable" in err and len(err.strip().splitlines()) == 1


def test_resume_of_a_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    # (--resume without any checkpoint starts from scratch: tests/test_search_rundir.py)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code = main(["search", *TINY, "--out", str(tmp_path / "run"), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot load checkpoint" in err and len(err.strip().splitlines()) == 1


def test_info_json_for_darts_v2(capsys):
    assert main(["info", "DARTS_V2", "--channels", "36", "--layers", "20", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 3_349_342 and info["macs"] > 5e8
