"""Retraining end to end on digits: outputs, checkpoints, exact resume, configs, bad input."""

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
import torch.nn.functional as F
import yaml
from pause_cli import PAUSE_RETRAIN_AFTER_STEPS

from robustnas.cli import main
from robustnas.config import read_yaml, resolve_config
from robustnas.engine import on_step
from robustnas.errors import UsageError
from robustnas.io import load_checkpoint
from robustnas.space.models import model_from_payload
from robustnas.train import RetrainConfig, TrainingInterrupted, retrain
from robustnas.train.heldout import heldout_subset

REPO = Path(__file__).resolve().parents[1]


def tiny(out: Path, **changes) -> RetrainConfig:
    base = dict(genotype="DARTS_V2", dataset="digits", C=4, layers=3, batch_size=16, epochs=2,
                max_steps_per_epoch=4, eval_n=48, eval_steps=2, eval_batch_size=24,
                steps=2, device="cpu", seed=5, out=str(out), checkpoint_every=2, cutout=2,
                threads=1)  # bit-identity across processes needs one thread count
    base.update(changes)
    return RetrainConfig(**base)


def tiny_args(out: Path) -> list[str]:
    return ["retrain", "DARTS_V2", "--dataset", "digits", "--channels", "4", "--layers", "3",
            "--batch-size", "16", "--epochs", "2", "--eval-n", "48", "--eval-steps", "2",
            "--steps", "2", "--device", "cpu", "--seed", "5", "--checkpoint-every", "2",
            "--cutout", "2",
            "--set", "max_steps_per_epoch=4", "--set", "eval_batch_size=24",
            "--adversarial", "pgd", "--drop-path", "0.2", "--auxiliary-weight", "0.4",
            "--threads", "1",  # bit-identity across processes needs one thread count
            "--out", str(out), "--quiet"]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]["state_dict"]


def assert_identical(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


# -- configuration ---------------------------------------------------------------------
def test_objective_defaults_and_precedence(tmp_path):
    none = RetrainConfig()
    assert (none.epochs, none.batch_size, none.lr, none.lr_schedule, none.weight_decay,
            none.cutout_for(32), none.drop_path, none.auxiliary_weight, none.grad_clip,
            none.best_by) == (600, 96, 0.025, "cosine", 3e-4, 16, 0.2, 0.4, 5.0, "clean")
    pgd = RetrainConfig(adversarial="pgd")
    assert (pgd.epochs, pgd.batch_size, pgd.lr, pgd.lr_schedule, pgd.lr_milestones,
            pgd.weight_decay, pgd.steps, pgd.random_start, pgd.best_by) == (
        200, 64, 0.1, "step", [100, 150], 1e-4, 7, True, "robust")
    assert pgd.eps == pytest.approx(8 / 255) and pgd.step_size == pytest.approx(2 / 255)
    trades = RetrainConfig(adversarial="trades")
    assert (trades.steps, trades.trades_beta) == (10, 6.0)
    assert trades.step_size == pytest.approx(2 / 255)
    fgsm = RetrainConfig(adversarial="fgsm-rs", eps=16 / 255)
    assert fgsm.step_size == pytest.approx(1.25 * 16 / 255)
    assert RetrainConfig(adversarial="pgd").eval_step_size == pytest.approx(2 / 255)
    # objective default < YAML < command line
    yml = tmp_path / "c.yaml"
    yml.write_text(yaml.safe_dump({"adversarial": "pgd", "epochs": 50, "lr": 0.05,
                                   "eps": "4/255"}))
    cfg = resolve_config(RetrainConfig, yml, {"lr": "0.2", "batch_size": None})
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.lr_milestones) == (50, 0.2, 64, [25, 37])
    assert cfg.eps == pytest.approx(4 / 255) and cfg.step_size == pytest.approx(1 / 255)


def test_shipped_configs_resolve():
    configs = sorted((REPO / "experiments" / "configs").glob("retrain_*.yaml"))
    names = {p.name for p in configs}
    assert {"retrain_standard_cifar10.yaml", "retrain_pgd_cifar10.yaml",
            "retrain_trades_cifar10.yaml", "retrain_tiny.yaml"} <= names
    pgd = resolve_config(RetrainConfig, REPO / "experiments/configs/retrain_pgd_cifar10.yaml")
    assert (pgd.adversarial, pgd.epochs, pgd.batch_size, pgd.lr, pgd.lr_milestones,
            pgd.C, pgd.layers, pgd.steps) == ("pgd", 200, 64, 0.1, [100, 150], 36, 20, 7)
    std = resolve_config(RetrainConfig,
                         REPO / "experiments/configs/retrain_standard_cifar10.yaml")
    assert (std.epochs, std.batch_size, std.cutout, std.auxiliary_weight) == (600, 96, 16, 0.4)
    for path in configs:
        resolve_config(RetrainConfig, path)


def test_image_sized_defaults_follow_the_dataset(tmp_path, digits, capsys):
    """Issue 20 item 5: DARTS' cutout 16 and crop padding 4 are for 32x32 images; unless
    set, they scale with the dataset's image side (exactly DARTS' values at 32)."""
    from robustnas.data import default_augment
    from robustnas.data.augment import scaled_to_image

    none = RetrainConfig()
    assert none.cutout is None  # not set: follows the dataset
    assert [none.cutout_for(s) for s in (32, 8, 28, 64, 96, 1)] == [16, 4, 14, 32, 48, 0]
    assert RetrainConfig(cutout=6).cutout_for(8) == 6  # a set value is kept as it is
    assert RetrainConfig(adversarial="pgd").cutout_for(32) == 0
    assert [scaled_to_image(4, s, minimum=1) for s in (32, 8, 28, 64)] == [4, 1, 3, 8]
    assert default_augment(digits).crop_padding == 1
    out = tmp_path / "run"  # DARTS standard training on 8x8 digits, cutout not set
    assert main(["retrain", "DARTS_V2", "--dataset", "digits", "--channels", "4", "--layers",
                 "3", "--batch-size", "16", "--epochs", "1", "--eval-n", "16",
                 "--eval-steps", "1", "--set", "max_steps_per_epoch=1", "--device", "cpu",
                 "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    assert read_yaml(out / "config.yaml")["cutout"] == 4  # what ran is recorded
    assert main(["retrain", "--resume", "--out", str(out), "--quiet"]) == 0
    assert "cutout" not in capsys.readouterr().err  # and kept on resume


@pytest.mark.parametrize("args, message", [
    (["DARTS_V2", "--eps", "8"], "eps (--eps) must be in [0, 1]"),
    (["DARTS_V2", "--eps=-1/255"], "eps (--eps) must be in [0, 1]"),
    (["DARTS_V2", "--adversarial", "bogus"], "unknown objective 'bogus'"),
    (["no_such_genotype.json"], "neither a file, a named genotype"),
    ([], "no genotype given"),
    (["DARTS_V2", "--amp", "--device", "cpu"], "only supported on CUDA"),
    (["DARTS_V2", "--lr-schedule", "cosine", "--set", "best_by=fastest"],
     "best_by (--best-by) must be one of clean, robust"),
    (["DARTS_V2", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["DARTS_V2", "--cutout", "16"], "not smaller than the 8-pixel images of digits"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    data = [] if "--dataset" in args else ["--dataset", "digits"]
    code = main(["retrain", *args, *data, "--device", "cpu", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists(), "bad input left a run directory behind"


def test_invalid_genotype_file(tmp_path, capsys):
    bad = tmp_path / "g.json"
    bad.write_text('{"normal": [["sep_conv_3x3", 0]], "reduce": []}')
    assert main(["retrain", str(bad), "--dataset", "digits", "--device", "cpu",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "g.json" in err and len(err.strip().splitlines()) == 1


def test_malformed_number_on_command_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["retrain", "DARTS_V2", "--eps", "eight"])
    assert info.value.code == 2
    assert "malformed number" in capsys.readouterr().err


# -- end to end --------------------------------------------------------------------------
@pytest.mark.parametrize("objective", ["none", "pgd", "trades", "fgsm-rs"])
def test_each_objective_end_to_end(tmp_path, objective):
    aux = 0.4 if objective in ("none", "trades") else 0.0
    result = retrain(tiny(tmp_path / "run", adversarial=objective, auxiliary_weight=aux,
                          cutout=3), show_progress=False)
    run = result.run_dir
    for name in ("last.pt", "best.pt", "config.yaml", "genotype.json", "summary.json"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*"))
    ckpt = load_checkpoint(run / "last.pt")  # weights_only=True
    for key in ("model", "dataset", "objective", "epoch", "step", "optimizer", "scheduler",
                "rng", "config", "best", "history"):
        assert key in ckpt, key
    assert ckpt["objective"] == objective and ckpt["epoch"] == 2 and ckpt["step"] == 0
    assert ckpt["dataset"]["name"] == "digits"
    assert ckpt["config"]["adversarial"] == objective
    # the payload rebuilds the trained network exactly
    net = model_from_payload(ckpt["model"]).eval()
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(net(x), result.model.eval()(x))
    history = result.history
    assert [r["epoch"] for r in history] == [1, 2]
    record = history[-1]
    assert record["images"] == 4 * 16
    assert 0 <= record["train_clean_acc"] <= 1 and record["train_loss"] > 0
    assert ("train_robust_acc" in record) == (objective != "none")
    assert 0 <= record["eval_clean_acc"] <= 1 and 0 <= record["eval_robust_acc"] <= 1
    assert record["eval_robust_acc"] <= record["eval_clean_acc"] + 0.25
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] and summary["epochs_completed"] == 2
    assert summary["best"]["metric"] == ("clean" if objective == "none" else "robust")
    values = [r[f"eval_{summary['best']['metric']}_acc"] for r in history]
    assert summary["best"]["value"] == max(values)
    best = load_checkpoint(run / "best.pt")
    assert best["epoch"] == summary["best"]["epoch"] == 1 + values.index(max(values))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["adversarial"] == objective and saved["auxiliary_weight"] == aux


def test_tensorboard_curves(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    retrain(tiny(tmp_path / "run", adversarial="trades", epochs=1), show_progress=False)
    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("train/loss", "train/clean_loss", "train/clean_acc", "train/robust_loss",
                "train/robust_acc", "train/trades_kl", "schedule/lr", "schedule/drop_path",
                "time/epoch_seconds", "time/images_per_second", "heldout/clean_acc",
                "heldout/pgd_acc"):
        assert tag in tags, tag


def test_heldout_clean_accuracy_matches_direct_computation(tmp_path):
    from robustnas.data import load_dataset

    result = retrain(tiny(tmp_path / "run", epochs=1, eval_steps=0, best_by="clean",
                          select_on="test"), show_progress=False)
    ds = load_dataset("digits")
    x, y = heldout_subset(ds.test_x, ds.test_y, 48)
    net = result.model.eval()
    with torch.no_grad():
        logits = net(x.float() / 255)
    assert result.heldout["n"] == 48
    clean_acc = (logits.argmax(1) == y).float().mean().item()
    assert result.heldout["clean_acc"] == pytest.approx(clean_acc)
    assert result.heldout["clean_loss"] == pytest.approx(F.cross_entropy(logits, y).item(),
                                                         rel=1e-5)
    assert "robust_acc" not in result.heldout


def test_no_evaluation_means_no_best_checkpoint(tmp_path):
    result = retrain(tiny(tmp_path / "run", epochs=1, eval_every=0, best_by="clean"),
                     show_progress=False)
    assert result.best_checkpoint is None and not (tmp_path / "run" / "best.pt").exists()


def test_drop_path_and_lr_schedules(tmp_path):
    result = retrain(tiny(tmp_path / "run", epochs=3, max_steps_per_epoch=1, eval_every=0,
                          best_by="clean", drop_path=0.3, lr=0.1, lr_schedule="step",
                          lr_milestones=[1, 2], lr_gamma=0.5), show_progress=False)
    assert [r["drop_path"] for r in result.history] == pytest.approx([0.0, 0.1, 0.2])
    assert [r["lr"] for r in result.history] == pytest.approx([0.1, 0.05, 0.025])


# -- interruption and exact resume ----------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted PGD run with drop-path, an auxiliary head and random starts."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ref") / "run"
    retrain(tiny(out, adversarial="pgd", drop_path=0.2, auxiliary_weight=0.4),
            show_progress=False)
    return out


class _Crash(Exception):
    pass


def test_crash_mid_epoch_then_resume_is_bit_identical(tmp_path, reference):
    out = tmp_path / "run"
    config = tiny(out, adversarial="pgd", drop_path=0.2, auxiliary_weight=0.4)
    seen = []

    def crash(trainer) -> None:
        seen.append((trainer.epoch, trainer.step))
        if (trainer.epoch, trainer.step) == (1, 3):  # mid-epoch 2, one step past last.pt
            raise _Crash

    with pytest.raises(_Crash):
        retrain(config, show_progress=False, callbacks=[on_step(crash)])
    ckpt = load_checkpoint(out / "last.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 2)
    result = retrain(overrides={"out": str(out)}, resume=True, show_progress=False)
    assert result.epochs_run == 2
    assert_identical(reference / "last.pt", out / "last.pt")
    ref_hist = load_checkpoint(reference / "last.pt")["history"]
    assert result.history[-1]["train_loss"] == pytest.approx(ref_hist[-1]["train_loss"])


def test_sigint_saves_and_resume_is_bit_identical(tmp_path, reference):
    out = tmp_path / "run"
    config = tiny(out, adversarial="pgd", drop_path=0.2, auxiliary_weight=0.4)

    def interrupt(trainer) -> None:
        if (trainer.epoch, trainer.step) == (0, 3):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="checkpoint saved"):
        retrain(config, show_progress=False, callbacks=[on_step(interrupt)])
    ckpt = load_checkpoint(out / "last.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (0, 3)  # the current step was finished and saved
    retrain(config, resume=out, show_progress=False)
    assert_identical(reference / "last.pt", out / "last.pt")


def test_sigkill_of_the_cli_then_resume_is_bit_identical(tmp_path, reference, capsys):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", PAUSE_RETRAIN_AFTER_STEPS, "7",
                                 *tiny_args(out)], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    watchdog = threading.Timer(300, proc.kill)  # never hang the suite
    watchdog.start()
    try:
        assert proc.stdout.readline().strip() == "PAUSED", stderr.read_text()
        proc.send_signal(signal.SIGKILL)  # mid-step 7, as a crash or an OOM killer would
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    ckpt = load_checkpoint(out / "last.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 2)  # 4 steps + 2 steps, the 7th was lost
    assert main(["retrain", "--resume", str(out), "--quiet"]) == 0
    assert "last:" in capsys.readouterr().out
    assert_identical(reference / "last.pt", out / "last.pt")


def test_resume_refuses_changed_options(tmp_path):
    out = tmp_path / "run"
    retrain(tiny(out, epochs=1, max_steps_per_epoch=2), show_progress=False)
    with pytest.raises(UsageError, match="cannot change momentum"):
        retrain(overrides={"out": str(out), "momentum": 0.5}, resume=True, show_progress=False)
    with pytest.raises(UsageError, match="differs from the one"):
        retrain(overrides={"out": str(out), "genotype": "ADVRUSH"}, resume=True,
                show_progress=False)
    # evaluation settings may change; an already finished run just reports again
    result = retrain(overrides={"out": str(out), "eval_n": 24, "genotype": "DARTS_V2"},
                     resume=True, show_progress=False)
    assert result.epochs_run == 1


def test_resume_without_checkpoint(tmp_path, capsys):
    # no checkpoint: start from scratch (tests/test_train_rundir.py), here without a genotype
    assert main(["retrain", "--resume", "--out", str(tmp_path / "none"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "starting from scratch" in err and "no genotype given" in err
    assert main(["retrain", "--resume", str(tmp_path / "none" / "last.pt"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err  # a named checkpoint file must exist
