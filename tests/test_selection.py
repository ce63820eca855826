"""Model selection on a validation split carved from the training set (issue 12, item 1)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from robustnas.cli import main
from robustnas.errors import UsageError
from robustnas.train import RetrainConfig, retrain
from robustnas.train.heldout import selection_split


def tiny(out, **changes) -> RetrainConfig:
    base = dict(genotype="DARTS_V2", dataset="digits", C=4, layers=3, batch_size=16, epochs=1,
                max_steps_per_epoch=2, eval_n=0, eval_steps=0, eval_batch_size=50,
                device="cpu", seed=5, out=str(out), cutout=2, best_by="clean")
    base.update(changes)
    return RetrainConfig(**base)


def test_validation_carve_is_disjoint_seeded_and_sized():
    n = 500
    x, y = torch.arange(n), torch.arange(n) % 10
    test_x, test_y = torch.arange(n, n + 50), torch.zeros(50, dtype=torch.long)
    cfg = RetrainConfig(val_n=60, eval_n=0)
    tx, ty, vx, vy, sel = selection_split(cfg, x, y, test_x, test_y)
    assert len(vx) == 60 and len(tx) == n - 60
    assert set(tx.tolist()).isdisjoint(vx.tolist())
    assert set(tx.tolist()) | set(vx.tolist()) == set(range(n))
    assert max(vx.tolist()) < n  # nothing from the test split
    assert sel == {"split": "val", "images": 60, "val_n": 60, "seed": 0, "train_images": 440}
    # same split for any training seed, another split for another val_seed
    again = selection_split(RetrainConfig(val_n=60, eval_n=0, seed=9), x, y, test_x, test_y)
    assert torch.equal(again[2], vx)
    other = selection_split(RetrainConfig(val_n=60, eval_n=0, val_seed=1), x, y, test_x, test_y)
    assert not torch.equal(other[2], vx)
    # default size: min(1000, 10 %)
    assert len(selection_split(RetrainConfig(eval_n=0), x, y, test_x, test_y)[2]) == 50


def test_bad_selection_options_are_one_line_errors():
    with pytest.raises(UsageError, match="select_on"):
        RetrainConfig(select_on="train").validate()
    with pytest.raises(UsageError, match="val_n must be at least 1"):
        RetrainConfig(val_n=0).validate()
    x, y = torch.arange(100), torch.zeros(100, dtype=torch.long)
    with pytest.raises(UsageError, match="does not fit"):
        selection_split(RetrainConfig(val_n=80), x, y, x, y)


def test_default_run_selects_on_validation_images_from_training(tmp_path):
    from robustnas.data import load_dataset

    result = retrain(tiny(tmp_path / "run", val_n=100), show_progress=False)
    summary = json.loads(result.summary_path.read_text())
    assert summary["selection"]["split"] == "val"
    assert summary["selection"]["val_n"] == 100
    assert "warning" not in summary["selection"]
    ds = load_dataset("digits")
    assert summary["selection"]["train_images"] == len(ds.train_y) - 100
    # The held-out numbers are those of the carved training images, not of test images.
    _, _, vx, vy, _ = selection_split(tiny(tmp_path, val_n=100),
                                      ds.train_x, ds.train_y, ds.test_x, ds.test_y)
    net = result.model.eval()
    with torch.no_grad():
        logits = net(vx.float() / 255)
    assert result.heldout["n"] == 100
    assert result.heldout["clean_acc"] == pytest.approx(
        (logits.argmax(1) == vy).float().mean().item())
    assert result.heldout["clean_loss"] == pytest.approx(
        F.cross_entropy(logits, vy).item(), rel=1e-5)


def test_selecting_on_test_warns_loudly(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["retrain", "DARTS_V2", "--dataset", "digits", "--channels", "4", "--layers",
                 "3", "--batch-size", "16", "--epochs", "1", "--eval-n", "40", "--eval-steps",
                 "0", "--device", "cpu", "--cutout", "2", "--best-by", "clean",
                 "--select-on", "test", "--set", "max_steps_per_epoch=2", "--out", str(out),
                 "--quiet"])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.err.count("optimistic") >= 2  # at the start and at the end
    assert "test (40 images, optimistic)" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selection"]["split"] == "test"
    assert "optimistic" in summary["selection"]["warning"]


def test_a_tiny_validation_split_warns_that_best_pt_follows_noise():
    x, y = torch.arange(12), torch.zeros(12, dtype=torch.long)
    *_, selection = selection_split(RetrainConfig(eval_n=0), x, y, x, y)
    assert selection["images"] == 1  # 10 % of 12 training images
    assert selection["warning"].startswith("best.pt is chosen on only 1 validation image(s)")
    assert "up to 6" in selection["warning"]
    x, y = torch.arange(1000), torch.zeros(1000, dtype=torch.long)
    assert "warning" not in selection_split(RetrainConfig(eval_n=0), x, y, x, y)[4]
    # A small eval_n is the user's choice (a quick run): no warning for that.
    assert "warning" not in selection_split(RetrainConfig(eval_n=20), x, y, x, y)[4]


def test_training_line_says_which_mode_each_accuracy_is_from(tmp_path, capsys):
    from robustnas.train.epoch_log import RetrainLogger, summary_line
    from robustnas.train.objectives import OBJECTIVES

    record = {"epoch": 1, "train_loss": 2.0, "train_clean_acc": 0.30, "train_robust_acc": 0.40,
              "lr": 0.1, "images_per_second": 10.0, "epoch_seconds": 1.0}
    assert OBJECTIVES.get("pgd").clean_metric_mode == "eval"
    assert OBJECTIVES.get("fgsm-rs").clean_metric_mode == "eval"
    assert OBJECTIVES.get("trades").clean_metric_mode == "train"
    line = summary_line(record, 3, "eval")
    assert "clean acc 0.300 [eval mode] robust acc 0.400 [train mode]" in line
    assert "[" not in summary_line(record, 3, "train")  # one mode: nothing to explain
    log = RetrainLogger(tmp_path, enabled=True, epochs=3, clean_mode="eval")
    log.end_epoch(record)
    log.end_epoch(dict(record, epoch=2))
    log.close()
    err = capsys.readouterr().err
    assert err.count("note: the training line's clean accuracy is measured in eval mode") == 1
