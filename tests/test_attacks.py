"""Attacks: agreement with independent implementations, the ε-ball, names and AutoAttack
(``pyautoattack``; its tests skip when it is not installed).

The reference attacks below are written from the papers' definitions as plain loops and
share no code with :mod:`robustnas.attacks`.
"""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustnas.attacks import fgsm_attack, make_attack, parse_attack_list, pgd_attack
from robustnas.errors import UsageError

EPS = 0.1  # digits are 8x8 with 17 grey levels: 8/255 hardly changes them


# -- a small trained model on digits (shared by the module) ------------------------------
@pytest.fixture(scope="module")
def digits_data(digits) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits train/test images as float [0, 1] and labels."""
    return digits.train_x.float() / 255, digits.train_y, digits.test_x.float() / 255, \
        digits.test_y


@pytest.fixture(scope="module")
def trained_mlp(fit_digits) -> nn.Module:
    """A one-hidden-layer MLP trained to ~95% clean accuracy (a second or two on CPU)."""
    torch.manual_seed(0)
    return fit_digits(nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(),
                                    nn.Linear(64, 10)))


def _acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


# -- independent reference attacks --------------------------------------------------------
def _ref_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    z = model(x)
    if kind == "ce":
        loss = F.cross_entropy(z, y, reduction="sum")
    else:  # Carlini-Wagner margin: best wrong logit minus true logit
        true = z[torch.arange(len(y)), y]
        wrong = z.clone()
        wrong[torch.arange(len(y)), y] = -1e9
        loss = (wrong.max(dim=1).values - true).sum()
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def ref_fgsm(model, x, y, eps):
    """Goodfellow et al.: x + ε·sign(∇ CE), clipped to the image box."""
    return torch.clamp(x + eps * _ref_grad(model, x, y, "ce").sign(), 0, 1).detach()


def ref_pgd(model, x, y, eps, alpha, steps, kind="ce", random_start=True, seed=123):
    """Madry et al.: random start, signed steps, projection on the box ∩ ε-ball."""
    x_adv = x.clone()
    if random_start:
        g = torch.Generator().manual_seed(seed)
        x_adv = torch.clamp(x + (torch.rand(x.shape, generator=g) * 2 - 1) * eps, 0, 1)
    for _ in range(steps):
        x_adv = x_adv.detach() + alpha * _ref_grad(model, x_adv, y, kind).sign()
        x_adv = torch.max(torch.min(x_adv, x + eps), x - eps).clamp(0, 1)
    return x_adv.detach()


# -- (a) agreement --------------------------------------------------------------------------
def test_fgsm_agrees_with_reference(trained_mlp, digits_data):
    _, _, x, y = digits_data
    ours = _acc(trained_mlp, fgsm_attack(trained_mlp, x, y, EPS), y)
    ref = _acc(trained_mlp, ref_fgsm(trained_mlp, x, y, EPS), y)
    clean = _acc(trained_mlp, x, y)
    assert clean > 85 and ours < clean - 10  # the attack does something on this model
    assert abs(ours - ref) <= 1.0


@pytest.mark.parametrize("name,kind", [("pgd20", "ce"), ("cw20", "cw")])
def test_pgd_and_cw_agree_with_reference(trained_mlp, digits_data, name, kind):
    _, _, x, y = digits_data
    attack = make_attack(name)
    gen = torch.Generator().manual_seed(7)
    ours = _acc(trained_mlp, attack.perturb(trained_mlp, x, y, EPS, gen), y)
    ref = _acc(trained_mlp, ref_pgd(trained_mlp, x, y, EPS, EPS / 4, 20, kind), y)
    # the registered attack reports the same figure as scoring its own perturbation
    gen = torch.Generator().manual_seed(7)
    reported = 100.0 * float(attack.run(trained_mlp, x, y, EPS, gen).correct.float().mean())
    assert reported == pytest.approx(ours)
    assert ours < _acc(trained_mlp, x, y) - 20
    assert abs(ours - ref) <= 1.0, (ours, ref)


def test_pgd_without_random_start_matches_reference_exactly(trained_mlp, digits_data):
    _, _, x, y = digits_data
    ours = pgd_attack(trained_mlp, x, y, EPS, EPS / 4, 10, random_start=False)
    ref = ref_pgd(trained_mlp, x, y, EPS, EPS / 4, 10, random_start=False)
    # same deterministic iteration: identical up to float rounding at sign(≈0)
    assert (ours - ref).abs().max() <= 1e-5 or \
        abs(_acc(trained_mlp, ours, y) - _acc(trained_mlp, ref, y)) <= 0.5


# -- (b) ε-ball and box ---------------------------------------------------------------------
def _saturated_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 8, 8, generator=g)
    x[:4] = (x[:4] > 0.5).float()  # pixels at exactly 0 and 1 exercise the box clipping
    return x, torch.randint(0, 10, (16,), generator=g)


@pytest.mark.parametrize("name", ["fgsm", "pgd3", "pgd20", "cw5"])
@pytest.mark.parametrize("eps", [0.0, 0.03, 0.3])
def test_perturbations_stay_in_ball_and_box(trained_mlp, name, eps):
    x, y = _saturated_batch()
    x_adv = make_attack(name, restarts=2).perturb(trained_mlp, x, y, eps,
                                                  torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    if eps == 0:
        assert torch.equal(x_adv, x)


def test_l2_pgd_and_fgsm_rs_stay_in_ball(trained_mlp):
    x, y = _saturated_batch()
    adv = pgd_attack(trained_mlp, x, y, 0.5, 0.2, 5, norm="l2", restarts=2,
                     generator=torch.Generator().manual_seed(0))
    assert (adv - x).flatten(1).norm(dim=1).max() <= 0.5 + 1e-5
    assert adv.min() >= 0 and adv.max() <= 1
    rs = fgsm_attack(trained_mlp, x, y, 0.1, random_start=True,
                     generator=torch.Generator().manual_seed(0))
    assert (rs - x).abs().max() <= 0.1 + 1e-6 and rs.min() >= 0 and rs.max() <= 1


def test_attacks_leave_mode_and_parameter_grads_alone(trained_mlp):
    x, y = _saturated_batch()
    trained_mlp.train()
    try:
        pgd_attack(trained_mlp, x, y, 0.1, 0.025, 3)
        assert trained_mlp.training
    finally:
        trained_mlp.eval()
    assert all(p.grad is None for p in trained_mlp.parameters())


def test_restarts_never_weaker(trained_mlp, digits_data):
    _, _, x, y = digits_data
    x, y = x[:120], y[:120]
    one = pgd_attack(trained_mlp, x, y, EPS, EPS / 2, 3, generator=torch.Generator().manual_seed(0))
    three = pgd_attack(trained_mlp, x, y, EPS, EPS / 2, 3, restarts=3,
                       generator=torch.Generator().manual_seed(0))
    # the first run uses the same random start, later runs only replace samples not fooled
    assert _acc(trained_mlp, three, y) <= _acc(trained_mlp, one, y)


# -- names ------------------------------------------------------------------------------------
def test_attack_names_and_steps():
    assert make_attack("pgd").name == "pgd20" and make_attack("PGD7").steps == 7
    assert make_attack("cw").name == "cw30" and make_attack("cw50").loss == "cw"
    names = [a.name for a in parse_attack_list("clean, fgsm,pgd20,pgd,cw")]
    assert names == ["clean", "fgsm", "pgd20", "cw30"]
    for bad in ("foo", "fgsm3", "pgd0", "pgd-2", ""):
        with pytest.raises(UsageError):
            parse_attack_list(bad)


# -- AutoAttack (pyautoattack) ---------------------------------------------------------------------
def test_autoattack_missing_library_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyautoattack", None)  # import now raises ImportError
    with pytest.raises(UsageError) as info:
        make_attack("autoattack")
    message = str(info.value)
    assert 'pip install -e ".[autoattack]"' in message and "pyautoattack" in message
    assert "\n" not in message


def test_autoattack_version_range_is_pinned_and_checked(monkeypatch):
    """pyautoattack repackages fra31/auto-attack with its own API: the extra pins a range,
    and the same range is checked when the package is imported."""
    import re
    import types
    from pathlib import Path

    from robustnas.attacks import autoattack as aa

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    pinned = re.search(r'autoattack = \["pyautoattack>=([\d.]+),<([\d.]+)"\]', pyproject)
    assert pinned, "the autoattack extra must pin a version range"
    low, high = (tuple(int(x) for x in v.split(".")[:2]) for v in pinned.groups())
    assert (low, high) == aa.SUPPORTED and pinned.group(0).split('"')[1] in aa.INSTALL_HINT
    assert aa.version_supported("0.2.0") and aa.version_supported("0.2.7")
    assert not aa.version_supported("0.3.0") and not aa.version_supported("0.1.9")
    assert not aa.version_supported("?")
    fake = types.ModuleType("pyautoattack")
    fake.__version__ = "0.3.1"
    fake.AutoAttack = object
    fake.checks = object()
    monkeypatch.setitem(sys.modules, "pyautoattack", fake)
    ok, reason = aa.autoattack_status()
    assert not ok and "0.3.1 is outside the supported range" in reason
    with pytest.raises(UsageError, match="outside the supported range"):
        make_attack("autoattack")


def test_autoattack_runs_and_cascades(trained_mlp, digits_data):
    pytest.importorskip("pyautoattack")
    _, _, x, y = digits_data
    x, y = x[:32], y[:32]
    attack = make_attack("autoattack", aa_steps=3, aa_queries=30)
    assert attack.describe()["standard"] is False
    assert make_attack("autoattack").describe()["standard"] is True
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    trace = sys.gettrace()
    out = attack.run(trained_mlp, x, y, EPS)
    assert torch.equal(state, torch.random.get_rng_state())  # caller's RNG untouched
    assert sys.gettrace() is trace  # the library's check_dynamic resets settrace; restored
    assert all(p.grad is None for p in trained_mlp.parameters())
    with torch.no_grad():
        clean = trained_mlp(x).argmax(1) == y
    parts = list(out.components.values())
    assert list(out.components) == [f"autoattack/{p}" for p in
                                    ("apgd-ce", "apgd-t", "fab-t", "square")]
    prev = clean
    for part in parts:  # each part only removes samples from the robust set
        assert not (part & ~prev).any()
        prev = part
    assert torch.equal(out.correct, parts[-1])
    assert int(out.correct.sum()) < int(clean.sum())  # APGD finds adversarials at ε = 0.1
    # the library's own log is captured (not printed) and its model calls are counted
    assert any("robust accuracy after APGD-CE" in line for line in out.log)
    assert out.warnings == [] and out.model_calls > 0 and out.model_images >= len(y)


class _Dynamic(nn.Module):
    """Calls torch.autograd.grad inside forward: AutoAttack's check_dynamic flags that."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            probe = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.inner(probe).sum(), probe)
        return self.inner(x) + 0 * g.sum()


def test_autoattack_checks_are_reported_per_model(trained_mlp, digits_data):
    pytest.importorskip("pyautoattack")
    _, _, x, y = digits_data
    attack = make_attack("apgd-ce", aa_steps=2)
    flagged = attack.run(_Dynamic(trained_mlp), x[:8], y[:8], EPS)
    assert any("dynamic defense" in w for w in flagged.warnings)
    clean = attack.run(trained_mlp, x[:8], y[:8], EPS)  # the library's counter is reset
    assert clean.warnings == []


def test_cascade_equals_one_official_standard_call(trained_mlp, digits_data):
    """Running the parts one by one gives, per sample, what one run_standard_evaluation gives."""
    lib = pytest.importorskip("pyautoattack")
    from robustnas.attacks.autoattack import _build, _Logits

    _, _, x, y = digits_data
    x, y = x[:40], y[:40]
    ours = make_attack("autoattack", aa_steps=4, aa_queries=20).run(trained_mlp, x, y, EPS)
    aa = _build(lib, None, _Logits(trained_mlp), EPS, 10, 4, 20, 0, torch.device("cpu"))
    assert aa.version == "standard" and aa.attacks_to_run == list(
        ("apgd-ce", "apgd-t", "fab-t", "square"))
    assert aa.square.rescale_schedule is False and aa.square.p_init == 0.8
    _, y_adv = aa.run_standard_evaluation(x, y, batch_size=len(y))
    assert torch.equal(ours.correct, y_adv == y)


def test_autoattack_consistent_with_pgd(trained_mlp, digits_data):
    """Official AutoAttack is never weaker than our PGD-20; per-sample worst case is the AND."""
    pytest.importorskip("pyautoattack")
    from robustnas.evaluation.runner import ModelEvaluator

    _, _, x, y = digits_data
    n = 64
    ev = ModelEvaluator(trained_mlp, (x[:n] * 255).round().to(torch.uint8), y[:n],
                        device=torch.device("cpu"), batch_size=n, seed=0,
                        tick=lambda images, stage: None)
    attacks = parse_attack_list("clean,pgd20,apgd-ce,autoattack", aa_steps=10, aa_queries=50)
    clean, (row,), per = ev.attacks(attacks, [(EPS, "0.1")])
    pgd, apgd, aa = (per[f"{k}@0.1"] for k in ("pgd20", "apgd-ce", "autoattack"))
    assert row["attacks"]["autoattack"] <= row["attacks"]["pgd20"] < clean - 20
    assert row["attacks"]["apgd-ce"] <= row["attacks"]["pgd20"] + 100 / n  # one sample
    # samples PGD-20 fools but AutoAttack does not: at most one (different random starts)
    assert int((aa & ~pgd).sum()) <= 1
    assert row["worst_case"] == pytest.approx(
        100 * float((per["clean"] & pgd & apgd & aa).float().mean()))
    assert row["worst_case"] <= min(row["attacks"].values())


# -- benchmark ------------------------------------------------------------------------------------
def test_bench_attack_runs_tiny(capsys):
    import json

    from robustnas.cli import main

    rc = main(["bench", "attack", "--channels", "4", "--layers", "2", "--batch-size", "2",
               "--image-size", "8", "--steps", "2", "--warmup", "0", "--rounds", "1",
               "--no-autoattack", "--device", "cpu", "--json"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in result["rows"]] == ["clean_fwd_bwd", "pgd2",
                                                      "pgd2+channels_last", "pgd2+reference"]
    assert result["rows"][1]["vs_own_reference"].endswith("x")
    assert any("CUDA only" in n for n in result["notes"])
    assert main(["bench", "attack", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
