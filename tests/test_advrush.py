"""AdvRush: the finite-difference curvature against exact Hessian-vector products, its units,
gradient routing (α yes, w no, no stray .grad), mode restoration, options and schedule."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from robustnas.errors import UsageError
from robustnas.search.objective import RegularizerSet
from robustnas.search.regularizers import REGULARIZERS, StepContext
from robustnas.search.regularizers.advrush import AdvRush, input_curvature
from robustnas.space.normalize import Normalize

MEAN = (0.4, 0.5, 0.6)
STD = (0.2, 0.25, 0.3)


def _smooth_body() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Softplus(), nn.Flatten(),
                         nn.Linear(4 * 5 * 5, 6), nn.Tanh(), nn.Linear(6, 5)).double()


@pytest.fixture
def smooth():
    """A smooth double-precision model, with and without its Normalize layer, and a batch."""
    body = _smooth_body()
    model = nn.Sequential(Normalize(MEAN, STD), body).double()
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(6, 3, 5, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (6,), generator=gen)
    return model, body, x, y


def _normalised(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN, dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - mean) / std


def test_small_h_matches_exact_hessian_vector_product(smooth):
    model, body, x, y = smooth
    h = 1e-5
    est = input_curvature(model, x, y, h)
    # Exact: H_i d_i in normalised space, d_i the unit sign direction of ∇ᵤℓ_i.
    u = _normalised(x).requires_grad_(True)
    loss = nn.functional.cross_entropy(body(u), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, [u], create_graph=True)
    d = torch.sign(g.detach())
    d = d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    (hd,) = torch.autograd.grad(g, [u], grad_outputs=d)
    exact = h * hd.flatten(1).norm(dim=1)
    assert exact.min() > 0
    torch.testing.assert_close(est.per_sample, exact, rtol=1e-4, atol=0)
    torch.testing.assert_close(est.value, exact.mean(), rtol=1e-4, atol=0)


def test_units_equal_the_computation_in_normalised_space(smooth):
    model, body, x, y = smooth
    h = 0.7  # a finite radius: the identity is exact, not only to first order
    ours = input_curvature(model, x, y, h)
    u = _normalised(x)
    plain = input_curvature(body, u, y, h)  # no Normalize layer: inputs are already u
    # rtol: Normalize keeps its std in float32
    torch.testing.assert_close(ours.per_sample, plain.per_sample, rtol=1e-6, atol=1e-9)
    # z moves u by exactly h (normalised units); in pixels it is s ⊙ z.
    std = torch.tensor(STD, dtype=x.dtype).view(1, -1, 1, 1)
    z_norm = ours.z_pixels / std
    torch.testing.assert_close(z_norm.flatten(1).norm(dim=1), torch.full((6,), h,
                                                                         dtype=x.dtype))
    torch.testing.assert_close(z_norm, plain.z_pixels, rtol=1e-6, atol=1e-9)


def test_h_pixels_sets_the_pixel_space_norm(smooth):
    model, _, x, y = smooth
    est = input_curvature(model, x, y, 0.1, pixel_units=True)
    torch.testing.assert_close(est.z_pixels.flatten(1).norm(dim=1),
                               torch.full((6,), 0.1, dtype=x.dtype))
    # One channel (or equal stds): h_pixels = h · s.
    one = nn.Sequential(Normalize((0.5,), (0.25,)), nn.Conv2d(1, 2, 3), nn.Softplus(),
                        nn.Flatten(), nn.Linear(2 * 9, 3)).double()
    xs = torch.rand(4, 1, 5, 5, dtype=torch.float64)
    ys = torch.tensor([0, 1, 2, 0])
    a = input_curvature(one, xs, ys, 0.25 * 1.5, pixel_units=True)
    b = input_curvature(one, xs, ys, 1.5)
    torch.testing.assert_close(a.value, b.value)
    torch.testing.assert_close(a.radius, torch.full((4,), 1.5, dtype=torch.float64))


def _context(net, batch, phase="arch", epoch=0):
    x, y = batch
    net.train()
    logits = net(x)
    loss = nn.functional.cross_entropy(logits, y)
    return StepContext(net, x, y, logits, loss, nn.functional.cross_entropy, phase, epoch, 0, 1)


def test_alpha_gets_the_gradient_weights_do_not(tiny_supernet, tiny_batch):
    net = tiny_supernet
    reg = AdvRush(start_epoch=0)
    ctx = _context(net, tiny_batch)
    term, logs = reg.loss(ctx)
    assert set(logs) >= {"R", "h"} and logs["h"] == 1.5 and logs["R"] > 0
    # loss() alone (including the direction pass) accumulates nothing anywhere.
    assert all(p.grad is None for p in net.parameters())
    arch = net.arch_parameters()
    reg_grads = torch.autograd.grad(term, arch, retain_graph=True)
    assert all(g.abs().sum() > 0 for g in reg_grads)
    # As the search loop does it: only α is differentiated; the weights stay untouched.
    plain = torch.autograd.grad(ctx.loss, arch, retain_graph=True)
    total = ctx.loss + term
    grads = torch.autograd.grad(total, arch, allow_unused=True)
    assert any(not torch.allclose(g, p) for g, p in zip(grads, plain))
    assert all(p.grad is None for p in net.weights())
    torch.testing.assert_close(term.detach(), torch.tensor(0.04 * logs["R"]))


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_modes_and_bn_statistics_are_restored(tiny_supernet, tiny_batch, bn_mode):
    net = tiny_supernet
    ctx = _context(net, tiny_batch)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    bns[0].eval()  # a mixed state must come back exactly as it was
    flags = [m.training for m in net.modules()]
    stats = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in bns]
    AdvRush(start_epoch=0, bn_mode=bn_mode).loss(ctx)
    assert [m.training for m in net.modules()] == flags
    assert net.training and not bns[0].training and bns[1].training
    for m, (mean, var, count) in zip(bns, stats):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert torch.equal(m.num_batches_tracked, count)


def test_options_schedule_and_ramp():
    reg = AdvRush(h="3/2", start_epoch="2", h_ramp="true")
    assert reg.active(2) and not reg.active(1)
    assert [reg.radius(e) for e in (2, 3, 7, 9)] == pytest.approx([0.0, 0.3, 1.5, 1.5])
    assert AdvRush().phases == frozenset({"arch"})
    assert AdvRush(apply_to_weights=True).phases == frozenset({"arch", "weights"})
    assert AdvRush(h_pixels="6/255").radius(60) == pytest.approx(6 / 255)
    for bad in ({"hh": 1}, {"h": -1}, {"bn_mode": "frozen"}, {"gamma": "abc"},
                {"h": 1.0, "h_pixels": 0.3}, {"start_epoch": 1.5}):
        with pytest.raises(UsageError):
            AdvRush(**bad)


def test_built_through_the_registry_and_the_regularizer_set(tiny_supernet, tiny_batch):
    assert REGULARIZERS.get("advrush") is AdvRush
    regs = RegularizerSet("advrush:0.5", {"advrush": {"start_epoch": 0, "h": "0.5"}})
    regs.setup(tiny_supernet)
    total, logs = regs.loss(_context(tiny_supernet, tiny_batch))
    assert logs["advrush/h"] == 0.5
    assert logs["advrush/term"] == pytest.approx(0.5 * 0.04 * logs["advrush/R"], rel=1e-5)
    assert not regs.applies("weights", 0)


@pytest.mark.parametrize("spec", ["advrush", "advrush:1,lipschitz:0.5"])
def test_alpha_step_frees_the_loss_graph_first_with_the_same_gradient(tiny_supernet, tiny_batch,
                                                                      spec):
    """AdvRush and Lipschitz do not reuse the step's graph, so the α step differentiates the
    loss before they build theirs; the gradient is the one of loss + term."""
    from robustnas.search.architect import Architect

    regs = RegularizerSet(spec, {"advrush": {"start_epoch": 0}})
    regs.setup(tiny_supernet)
    assert not regs.reuses_step_graph("arch", 0)
    arch = tiny_supernet.arch_parameters()
    architect = Architect(tiny_supernet, torch.optim.Adam(arch), torch.optim.SGD(
        tiny_supernet.weights(), lr=0.1), regs, nn.CrossEntropyLoss())
    x, y = tiny_batch
    state = torch.get_rng_state()  # Lipschitz sampling draws α: the same draws in both
    # and the same batch-norm running statistics (the train-mode forward updates them)
    buffers = {k: v.clone() for k, v in tiny_supernet.state_dict().items()}
    power_vectors = copy.deepcopy(regs.state_dict())  # Lipschitz power iteration advances
    freed, loss_a, logs_a = architect._first_order_grads(x, y, 0, 0, 1)
    for _, _, reg in regs.terms:
        reg.reuses_step_graph = True  # the combined path: one backward of loss + term
    assert regs.reuses_step_graph("arch", 0)
    torch.set_rng_state(state)
    tiny_supernet.load_state_dict(buffers)
    regs.load_state_dict(power_vectors)
    combined, loss_b, logs_b = architect._first_order_grads(x, y, 0, 0, 1)
    assert loss_a == loss_b and logs_a == logs_b
    for a, b in zip(freed, combined):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in freed)
