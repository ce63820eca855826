"""The α step on adversarial validation batches (``alpha_objective``, issue 19 item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustnas.attacks import pgd_attack
from robustnas.checkpoints import load_checkpoint
from robustnas.engine.callbacks import on_step
from robustnas.errors import UsageError
from robustnas.search import SearchConfig, run_search
from robustnas.search.alpha_objective import AlphaAttack, build_alpha_attack
from robustnas.search.searcher import SearchInterrupted


def _config(out: Path, **changes) -> SearchConfig:
    settings = dict(dataset="synthetic", dataset_options={"n_train": 96, "n_test": 32},
                    C=4, layers=3, batch_size=16, epochs=2, warmup_epochs=1, device="cpu",
                    seed=3, out=str(out), draw_every=0, threads=1, space="nb201",
                    max_steps_per_epoch=3)
    settings.update(changes)
    return SearchConfig(**settings)


def _state(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoint.pt")["model"]["state_dict"]


def test_the_attack_follows_the_weight_steps_settings():
    assert build_alpha_attack("clean", "pgd", {}) is None
    pgd = build_alpha_attack("adversarial", "none", {}).settings  # a clean weight step
    assert (pgd.eps, pgd.steps, pgd.step_size, pgd.random_start) == (8 / 255, 7, 2 / 255,
                                                                      True)
    fgsm = build_alpha_attack("adversarial", "fgsm-rs", {"eps": 0.1}).settings
    assert (fgsm.steps, fgsm.step_size) == (1, pytest.approx(0.125))
    assert build_alpha_attack("adversarial", "pgd", {"steps": 3}).settings.steps == 3
    with pytest.raises(UsageError, match="alpha_objective must be one of"):
        build_alpha_attack("pgd", "none", {})


def test_the_attack_is_pgd_in_eval_mode_and_restores_the_mode():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.LazyLinear(3))
    x, y = torch.rand(8, 1, 6, 6), torch.randint(0, 3, (8,))
    model(x)
    attack = build_alpha_attack("adversarial", "none", {"steps": 3, "eps": 0.1})
    assert isinstance(attack, AlphaAttack)
    torch.manual_seed(0)
    x_adv = attack(model, x, y)
    assert model.training and not x_adv.requires_grad
    model.eval()
    torch.manual_seed(0)
    expected = pgd_attack(model, x, y, 0.1, attack.settings.step_size, 3, random_start=True)
    assert torch.equal(x_adv, expected)
    assert 0 < (x_adv - x).abs().max() <= 0.1 + 1e-6


def test_refusals_and_options_with_a_clean_weight_step(tmp_path):
    with pytest.raises(UsageError, match="alpha_objective") as info:
        _config(tmp_path, alpha_objective="robust").validate()
    assert "\n" not in str(info.value)
    # the attack's options are allowed without an adversarial weight step
    _config(tmp_path, alpha_objective="adversarial",
            w_objective_options={"steps": 2}).validate()
    with pytest.raises(UsageError, match="pixel scale"):
        _config(tmp_path, alpha_objective="adversarial",
                w_objective_options={"eps": 8}).validate()


def test_adversarial_alpha_steps_change_alpha_only_after_the_warm_up(tmp_path):
    clean = run_search(_config(tmp_path / "clean"), show_progress=False)
    adv = run_search(_config(tmp_path / "adv", alpha_objective="adversarial",
                             w_objective_options={"steps": 2}), show_progress=False)
    a, b = _state(tmp_path / "clean"), _state(tmp_path / "adv")
    alphas = [k for k in a if "alpha" in k or "arch" in k]
    assert alphas, sorted(a)[:5]
    assert any(not torch.equal(a[k], b[k]) for k in alphas)
    assert clean.history[0]["train_loss"] == adv.history[0]["train_loss"]  # warm-up
    assert clean.history[-1]["arch_val_loss"] < adv.history[-1]["arch_val_loss"]


def test_adversarial_alpha_steps_resume_bit_identical(tmp_path):
    changes = dict(alpha_objective="adversarial", w_objective="fgsm-rs",
                   w_objective_options={"eps": 0.05})
    reference, run = tmp_path / "ref", tmp_path / "run"
    run_search(_config(reference, **changes), show_progress=False)

    def stop(task) -> None:
        if (task.epoch, task.step) == (1, 1):
            task.request_stop("test")

    with pytest.raises(SearchInterrupted):
        run_search(_config(run, **changes), show_progress=False, callbacks=[on_step(stop)])
    run_search(overrides={"out": str(run)}, resume=True, show_progress=False)
    a, b = _state(reference), _state(run)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
