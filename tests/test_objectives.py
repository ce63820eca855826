"""Training objectives: none, pgd, trades, fgsm-rs (tiny network, 1×8×8 inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustnas.space.darts.catalogue import GENOTYPES
from robustnas.space.darts.network import Network
from robustnas.train.objectives import (
    OBJECTIVES,
    MainLogits,
    ObjectiveSettings,
    trades_kl,
    trades_perturb,
)

EPS = 0.1


def make_net(auxiliary: bool = False) -> Network:
    torch.manual_seed(0)
    return Network(GENOTYPES.get("DARTS_V2"), C=4, num_classes=10, layers=3,
                   auxiliary=auxiliary, in_channels=1, mean=(0.5,), std=(0.25,))


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(16, 1, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen)


def settings(**kw) -> ObjectiveSettings:
    base = dict(eps=EPS, step_size=EPS / 4, steps=3, random_start=True, trades_beta=6.0)
    base.update(kw)
    return ObjectiveSettings(**base)


def test_registry_names():
    assert set(OBJECTIVES.names()) == {"none", "pgd", "trades", "fgsm-rs"}
    assert not OBJECTIVES.get("none").adversarial
    assert all(OBJECTIVES.get(n).adversarial for n in ("pgd", "trades", "fgsm-rs"))


@pytest.mark.parametrize("name", ["none", "pgd", "trades", "fgsm-rs"])
def test_objective_trains_and_leaves_model_clean(name, batch):
    """Mode is restored, no parameter gradient is left by the attack, and a few SGD steps
    on one batch lower the objective (same random starts before and after)."""
    x, y = batch
    net = make_net()
    net.train()
    objective = OBJECTIVES.get(name)(settings())
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)

    def loss_now() -> float:
        torch.manual_seed(123)
        out = objective.compute(net, x, y)
        return float(out.loss.detach())

    before = loss_now()
    assert all(p.grad is None for p in net.parameters()), "the attack left parameter grads"
    assert net.training
    for _ in range(8):
        torch.manual_seed(7)
        out = objective.compute(net, x, y)
        assert torch.isfinite(out.loss)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    after = loss_now()
    assert after < before, (name, before, after)
    out = objective.compute(net, x, y)
    if name == "none":
        assert out.adv_logits is None and out.x_adv is None
        assert out.clean_logits.shape == (16, 10)
    else:
        assert out.adv_logits.shape == (16, 10) and out.clean_logits.shape == (16, 10)
        delta = out.x_adv - x
        assert delta.abs().max() <= EPS + 1e-6
        assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
        assert delta.abs().max() > EPS / 2, "no perturbation was made"


def test_pgd_loss_is_cross_entropy_on_adversarial_batch(batch):
    x, y = batch
    net = make_net()
    net.train()
    objective = OBJECTIVES.get("pgd")(settings(eps=0.3, step_size=0.1, steps=5))
    torch.manual_seed(0)
    out = objective.compute(net, x, y)
    with torch.no_grad():
        direct = F.cross_entropy(net(out.x_adv), y)
        clean_eval = F.cross_entropy(net.eval()(x), y)
    net.train()
    assert torch.allclose(out.loss.detach(), direct, atol=1e-5)
    # the attack (in eval mode) raises the eval-mode loss well above the clean one
    with torch.no_grad():
        adv_eval = F.cross_entropy(net.eval()(out.x_adv), y)
    assert adv_eval > clean_eval + 0.05


@pytest.mark.parametrize("attack_bn,expected", [("eval", False), ("train", True)])
def test_attack_bn_mode(attack_bn, expected, batch):
    """Attack forwards run in the requested mode; the training forward in train mode."""
    x, y = batch
    net = make_net()
    net.train()
    modes: list[bool] = []
    handle = net.register_forward_pre_hook(lambda m, inp: modes.append(m.training))
    objective = OBJECTIVES.get("pgd")(settings(attack_bn=attack_bn, clean_metrics=False))
    objective.compute(net, x, y)
    handle.remove()
    assert modes[:-1] == [expected] * 3  # the 3 PGD steps
    assert modes[-1] is True
    assert net.training


def test_auxiliary_loss_is_weighted(batch):
    x, y = batch
    net = make_net(auxiliary=True)
    net.train()
    plain = OBJECTIVES.get("none")(settings(auxiliary_weight=0.0)).compute(net, x, y)
    weighted = OBJECTIVES.get("none")(settings(auxiliary_weight=0.4)).compute(net, x, y)
    with torch.no_grad():
        logits, aux = net(x)
    assert torch.allclose(plain.loss, F.cross_entropy(logits, y), atol=1e-6)
    assert torch.allclose(weighted.loss - plain.loss, 0.4 * F.cross_entropy(aux, y), atol=1e-6)


def test_main_logits_view_drops_aux(batch):
    x, _ = batch
    net = make_net(auxiliary=True)
    net.train()
    assert isinstance(net(x), tuple)
    out = MainLogits(net)(x)
    assert isinstance(out, torch.Tensor) and out.shape == (16, 10)


def _kl_numpy(adv: torch.Tensor, clean: torch.Tensor) -> float:
    a = adv.double().numpy()
    c = clean.double().numpy()
    p = np.exp(c - c.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    q = np.exp(a - a.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    return float((p * (np.log(p) - np.log(q))).sum(1).mean())


def test_trades_kl_function():
    gen = torch.Generator().manual_seed(0)
    clean, adv = torch.randn(5, 7, generator=gen), torch.randn(5, 7, generator=gen)
    assert trades_kl(adv, clean).item() == pytest.approx(_kl_numpy(adv, clean), rel=1e-5)
    assert trades_kl(clean, clean).item() == pytest.approx(0.0, abs=1e-7)
    torch_kl = F.kl_div(F.log_softmax(adv, 1), F.softmax(clean, 1), reduction="batchmean")
    assert trades_kl(adv, clean).item() == pytest.approx(torch_kl.item(), rel=1e-5)


def test_trades_kl_term_is_nonzero_and_correct(batch):
    """The KL term of the TRADES loss is KL(f(x) ‖ f(x')) on the adversarial batch (AdvRush's
    code computes it on the clean batch twice, which is identically zero)."""
    x, y = batch
    net = make_net()
    net.train()
    beta = 6.0
    objective = OBJECTIVES.get("trades")(settings(trades_beta=beta, eps=0.2, step_size=0.05))
    torch.manual_seed(0)
    out = objective.compute(net, x, y)
    kl = out.extras["trades_kl"].item()
    with torch.no_grad():  # train mode: batch statistics, as in the objective's forwards
        clean_logits = net(x)
        adv_logits = net(out.x_adv)
    direct = _kl_numpy(adv_logits, clean_logits)
    assert kl > 1e-4
    assert kl == pytest.approx(direct, rel=1e-4, abs=1e-7)
    natural = F.cross_entropy(clean_logits, y).item()
    assert out.extras["trades_natural_loss"].item() == pytest.approx(natural, rel=1e-5)
    assert out.loss.item() == pytest.approx(natural + beta * direct, rel=1e-4)


def test_trades_gradient_flows_through_both_branches(batch):
    x, y = batch
    net = make_net()
    net.train()
    out = OBJECTIVES.get("trades")(settings(trades_beta=6.0)).compute(net, x, y)
    out.loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_trades_perturb_increases_kl(batch):
    x, _ = batch
    net = make_net().eval()
    with torch.no_grad():
        clean = net(x)
    gen = torch.Generator().manual_seed(0)
    start = trades_perturb(net, x, clean, eps=0.2, step_size=0.05, steps=0, generator=gen)
    gen = torch.Generator().manual_seed(0)
    x_adv = trades_perturb(net, x, clean, eps=0.2, step_size=0.05, steps=5, generator=gen)
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6
    with torch.no_grad():
        assert trades_kl(net(x_adv), clean) > 10 * trades_kl(net(start), clean)
    assert all(p.grad is None for p in net.parameters())


def test_fgsm_rs_step(batch):
    """FGSM-RS: uniform start in the ball, one step, projected: |δ| ≤ ε and most pixels at
    the boundary (a 1.25ε step from anywhere in the ball reaches it unless clipped)."""
    x, y = batch
    x = x * 0.5 + 0.25  # away from 0/1 so that clipping to [0, 1] does not interfere
    net = make_net()
    net.train()
    objective = OBJECTIVES.get("fgsm-rs")(settings(eps=0.1, step_size=0.125))
    torch.manual_seed(0)
    out = objective.compute(net, x, y)
    delta = (out.x_adv - x).abs()
    assert delta.max() <= 0.1 + 1e-6
    assert (delta > 0.1 - 1e-6).float().mean() > 0.5
