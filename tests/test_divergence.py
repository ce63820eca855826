"""Divergence: a non-finite loss, gradient, α or weight stops search and retraining (exit 3),
keeps the last good checkpoint (resumable with a lower learning rate), writes nothing from the
diverged parameters; ``skip_nonfinite`` skips such steps instead."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from robustnas.cli import main
from robustnas.divergence import DivergenceGuard, change_learning_rate
from robustnas.errors import DivergenceError
from robustnas.io import load_checkpoint
from robustnas.search.api import run_search
from robustnas.search.config import SearchConfig
from robustnas.train import RetrainConfig, retrain
from robustnas.train.objectives.standard import StandardObjective


def tiny_retrain(out: Path, **changes) -> RetrainConfig:
    base = dict(genotype="DARTS_V2", dataset="digits", C=4, layers=3, batch_size=16, epochs=2,
                max_steps_per_epoch=4, eval_n=24, eval_steps=1, eval_batch_size=24,
                device="cpu", seed=5, out=str(out), checkpoint_every=2, cutout=2,
                auxiliary_weight=0.0, drop_path=0.0)
    base.update(changes)
    return RetrainConfig(**base)


def tiny_search(out: Path, **changes) -> SearchConfig:
    base = dict(dataset="synthetic", dataset_options={"n_train": 96, "n_test": 32}, C=4,
                layers=3, batch_size=16, epochs=2, warmup_epochs=0, device="cpu", seed=3,
                out=str(out), draw_every=0, max_steps_per_epoch=2)
    base.update(changes)
    return SearchConfig(**base)


@pytest.fixture
def poison_retrain_batch(monkeypatch):
    """``poison({6})``: the 6th, ... training batches (1-based, counted over the run) get a
    NaN pixel, as a corrupted image or an overflow in bf16 would produce."""
    def poison(steps: set[int]) -> None:
        original, seen = StandardObjective.compute, [0]

        def compute(self, model, x, y):
            seen[0] += 1
            if seen[0] in steps:
                x = x.clone()
                x[0, 0, 0, 0] = float("nan")
            return original(self, model, x, y)
        monkeypatch.setattr(StandardObjective, "compute", compute)
    return poison


def _all_finite(path: Path) -> bool:
    state = load_checkpoint(path)["model"]["state_dict"]
    return all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


# -- retraining -------------------------------------------------------------------------
def test_retrain_divergence_stops_keeps_last_good_checkpoint_and_resumes(
        tmp_path, poison_retrain_batch):
    out = tmp_path / "run"
    poison_retrain_batch({6})  # epoch 2, step 2
    with pytest.raises(DivergenceError) as info:
        retrain(tiny_retrain(out), show_progress=False)
    message = str(info.value)
    assert "training loss became nan at epoch 2, step 2" in message
    assert str(out / "last.pt") in message and "--resume" in message
    state = load_checkpoint(out / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 0)  # the last good one, not a NaN one
    assert _all_finite(out / "last.pt")
    best_epoch = load_checkpoint(out / "best.pt")["epoch"]
    assert best_epoch == 1  # best.pt was not rewritten from diverged parameters
    # Continue the last good checkpoint with a lower learning rate.
    result = retrain(overrides={"out": str(out), "lr": 0.0125}, resume=True,
                     show_progress=False)
    assert result.epochs_run == 2 and _all_finite(out / "last.pt")
    assert load_checkpoint(out / "last.pt")["scheduler"]["base_lrs"] == [0.0125]


def test_retrain_divergence_from_a_huge_learning_rate_exits_3(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["retrain", "DARTS_V2", "--dataset", "digits", "--channels", "4", "--layers",
                 "3", "--batch-size", "16", "--epochs", "2", "--eval-n", "24", "--device",
                 "cpu", "--cutout", "2", "--set", "max_steps_per_epoch=4", "--lr", "1e30",
                 "--grad-clip", "0", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "retraining diverged" in err and "became" in err and "epoch 1, step" in err
    assert not (out / "best.pt").exists() and not (out / "last.pt").exists()
    assert not (out / "summary.json").exists()


def test_retrain_skip_nonfinite_skips_counts_and_restores_batch_norm(tmp_path,
                                                                     poison_retrain_batch, capsys):
    out = tmp_path / "run"
    poison_retrain_batch({3})
    result = retrain(tiny_retrain(out, skip_nonfinite=True), show_progress=False)
    assert result.epochs_run == 2
    assert [r["skipped_steps"] for r in result.history] == [1, 0]
    assert "skipped a step (the training loss became nan)" in capsys.readouterr().err
    assert _all_finite(out / "last.pt")  # batch-norm statistics of the NaN batch undone
    assert math.isfinite(result.history[0]["train_loss"])


def test_skip_nonfinite_still_stops_when_nothing_trains(tmp_path, poison_retrain_batch):
    poison_retrain_batch(set(range(1, 100)))
    with pytest.raises(DivergenceError, match="4 steps in a row were skipped"):
        retrain(tiny_retrain(tmp_path / "run", skip_nonfinite=True), show_progress=False)


# -- search ------------------------------------------------------------------------------
def test_search_divergence_writes_no_genotype_and_resumes(tmp_path, monkeypatch):
    import robustnas.search.searcher as searcher_module

    out = tmp_path / "run"
    original, seen = searcher_module.weight_step, [0]

    def poisoned(model, optimizer, x, *args, **kwargs):
        seen[0] += 1
        if seen[0] == 2:  # epoch 2, step 1
            x = x.clone()
            x[0, 0, 0, 0] = float("inf")
        return original(model, optimizer, x, *args, **kwargs)
    monkeypatch.setattr(searcher_module, "weight_step", poisoned)
    with pytest.raises(DivergenceError, match=r"search diverged: the training loss became "
                                              r"nan at epoch 2, step 1"):
        run_search(tiny_search(out, max_steps_per_epoch=1), show_progress=False)
    assert not (out / "genotype.json").exists()
    assert not list(out.glob("*.png")) and not list(out.glob("*.svg"))
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    monkeypatch.setattr(searcher_module, "weight_step", original)
    result = run_search(tiny_search(out, w_lr=0.01, max_steps_per_epoch=1), resume=True,
                        show_progress=False)
    assert result.epochs_run == 2 and result.genotype_path.exists()


def test_search_huge_arch_lr_stops_with_exit_3(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["search", "--dataset", "synthetic", "--set",
                 "dataset_options={n_train: 96, n_test: 32}", "--channels", "4", "--layers",
                 "3", "--batch-size", "16", "--epochs", "2", "--device", "cpu", "--set",
                 "max_steps_per_epoch=3", "--set", "w_lr=1e30", "--set", "grad_clip=0",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 3 and len(err.strip().splitlines()) == 1 and "search diverged" in err
    assert not (out / "genotype.json").exists()


def test_search_skip_nonfinite(tmp_path, monkeypatch):
    import robustnas.search.searcher as searcher_module

    original, seen = searcher_module.weight_step, [0]

    def poisoned(model, optimizer, x, *args, **kwargs):
        seen[0] += 1
        if seen[0] == 2:
            x = x.clone()
            x[0, 0, 0, 0] = float("nan")
        return original(model, optimizer, x, *args, **kwargs)
    monkeypatch.setattr(searcher_module, "weight_step", poisoned)
    result = run_search(tiny_search(tmp_path / "run", skip_nonfinite=True, epochs=1),
                        show_progress=False)
    assert [r["skipped_steps"] for r in result.history] == [1]
    assert result.genotype_path.exists()
    assert all(torch.isfinite(p).all() for p in load_checkpoint(
        tmp_path / "run" / "checkpoint.pt")["model"]["state_dict"].values()
        if p.is_floating_point())


# -- the guard on its own ------------------------------------------------------------------
def test_guard_names_alpha_and_weights_and_checks_values(tmp_path):
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = DivergenceGuard("demo", checkpoint=tmp_path / "none.pt")
    guard.watch_optimizer(optimizer, "weights")
    guard.begin_step(0, 4)
    model(torch.ones(1, 2)).sum().backward()
    model.weight.grad[0, 0] = float("inf")
    with pytest.raises(DivergenceError, match="gradient norm of the weights became inf at "
                                              "epoch 1, step 5; .*no checkpoint"):
        optimizer.step()
    assert torch.isfinite(model.weight).all()  # the step was not taken
    with torch.no_grad():
        model.bias[1] = float("nan")
    with pytest.raises(DivergenceError, match=r"the α became non-finite \(parameter bias\)"):
        guard.end_step({"α": model.named_parameters()})
    with pytest.raises(DivergenceError, match="validation loss became nan"):
        guard.check_value("validation loss", float("nan"))


def test_change_learning_rate_scales_cosine_schedule():
    params = [nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(params, lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    for _ in range(3):
        opt.step()
        sched.step()
    fresh_opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    fresh = torch.optim.lr_scheduler.CosineAnnealingLR(fresh_opt, T_max=10, eta_min=0.001)
    for _ in range(3):
        fresh_opt.step()
        fresh.step()
    assert change_learning_rate(opt, sched, 0.01)
    for _ in range(4):  # the rescaled schedule continues as a run started with 0.01
        assert opt.param_groups[0]["lr"] == pytest.approx(fresh_opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        fresh_opt.step()
        fresh.step()
    assert not change_learning_rate(opt, sched, 0.01)
