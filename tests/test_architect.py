"""Bilevel α updates: the finite-difference Hessian-vector product and the unrolled gradient
against exact autograd on a tiny supernet (float64)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from robustnas.errors import UsageError
from robustnas.search.architect import Architect, weight_step
from robustnas.search.objective import RegularizerSet, parse_regularizer_spec
from robustnas.space.darts.supernet import SuperNet


@pytest.fixture
def setup():
    torch.manual_seed(0)
    net = SuperNet(C=4, num_classes=5, layers=3, steps=2, multiplier=2, in_channels=1).double()
    with torch.no_grad():  # non-trivial α so the mixed second derivative is not tiny
        for a in net.arch_parameters():
            a.normal_(0, 0.5)
    gen = torch.Generator().manual_seed(1)
    xs = [torch.rand(6, 1, 8, 8, generator=gen, dtype=torch.float64) for _ in range(2)]
    ys = [torch.randint(0, 5, (6,), generator=gen) for _ in range(2)]
    w_opt = torch.optim.SGD(net.weights(), lr=0.1, momentum=0.0, weight_decay=0.0)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=1e-3)
    arch = Architect(net, a_opt, w_opt, RegularizerSet("none"), nn.CrossEntropyLoss(), order=2)
    return net, arch, xs, ys


def test_finite_difference_hvp_matches_exact_autograd(setup):
    net, arch, (x, _), (y, _) = setup
    gen = torch.Generator().manual_seed(2)
    vector = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in net.weights()]
    approx = arch.hessian_vector_product(vector, x, y, r=1e-6)
    loss = nn.functional.cross_entropy(net(x), y)
    grads_w = torch.autograd.grad(loss, net.weights(), create_graph=True, allow_unused=True)
    dot = sum((g * v).sum() for g, v in zip(grads_w, vector) if g is not None)
    exact = torch.autograd.grad(dot, net.arch_parameters())
    for a, e in zip(approx, exact):
        assert e.abs().max() > 1e-4  # the test is not vacuous
        torch.testing.assert_close(a, e, rtol=1e-3, atol=1e-6)


def test_second_order_gradient_matches_autograd_through_the_unrolled_step(setup):
    net, arch, (x_t, x_v), (y_t, y_v) = setup
    lr = 0.1
    arch.fd_radius = 1e-5  # the tiny float64 net is very curved; 0.01 is DARTS' float32 choice
    ours, _ = arch._second_order_grads(x_t, y_t, x_v, y_v, lr)

    named = net.named_weights()
    loss_t = nn.functional.cross_entropy(net(x_t), y_t)
    grads = torch.autograd.grad(loss_t, [p for _, p in named], create_graph=True,
                                allow_unused=True)
    unrolled = {n: p - lr * (g if g is not None else torch.zeros_like(p))
                for (n, p), g in zip(named, grads)}
    loss_v = nn.functional.cross_entropy(functional_call(net, unrolled, (x_v,)), y_v)
    exact = torch.autograd.grad(loss_v, net.arch_parameters())
    for a, e in zip(ours, exact):
        torch.testing.assert_close(a, e, rtol=2e-3, atol=1e-7)


def test_first_order_step_moves_only_alpha(setup):
    net, arch, (x_t, x_v), (y_t, y_v) = setup
    arch.order = 1
    before_w = [p.detach().clone() for p in net.weights()]
    before_a = [p.detach().clone() for p in net.arch_parameters()]
    arch.step(x_t, y_t, x_v, y_v, lr=0.1, epoch=0, step=0, total_epochs=1)
    assert all(torch.equal(b, p) for b, p in zip(before_w, net.weights()))
    assert any(not torch.equal(b, p) for b, p in zip(before_a, net.arch_parameters()))
    assert all(p.grad is None for p in net.weights())


def test_weight_step_moves_only_weights(setup):
    net, arch, (x_t, _), (y_t, _) = setup
    before_a = [p.detach().clone() for p in net.arch_parameters()]
    before_w = [p.detach().clone() for p in net.weights()]
    weight_step(net, arch.w_optimizer, x_t, y_t, nn.CrossEntropyLoss(), 5.0)
    assert all(torch.equal(b, p) for b, p in zip(before_a, net.arch_parameters()))
    assert any(not torch.equal(b, p) for b, p in zip(before_w, net.weights()))


def test_regularizer_spec_parsing():
    assert parse_regularizer_spec("none") == []
    assert parse_regularizer_spec("") == []
    with pytest.raises(UsageError, match="unknown regularizer 'bogus'"):
        parse_regularizer_spec("bogus")
    with pytest.raises(UsageError, match="malformed number"):
        parse_regularizer_spec("none,none:abc")


def test_unrolled_step_uses_optimizer_momentum_and_weight_decay():
    torch.manual_seed(0)
    net = SuperNet(C=4, num_classes=3, layers=3, steps=2, multiplier=2, in_channels=1).double()
    w_opt = torch.optim.SGD(net.weights(), lr=0.1, momentum=0.9, weight_decay=0.01)
    arch = Architect(net, torch.optim.Adam(net.arch_parameters()), w_opt, RegularizerSet("none"),
                     nn.CrossEntropyLoss(), order=2)
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    weight_step(net, w_opt, x, y, nn.CrossEntropyLoss(), 0.0)  # fills momentum buffers
    unrolled = arch.unrolled_weights(x, y, lr=0.1)
    # The unrolled weights are what one more real SGD step produces.
    weight_step(net, w_opt, x, y, nn.CrossEntropyLoss(), 0.0)
    for name, p in net.named_weights():
        torch.testing.assert_close(unrolled[name], p.detach(), rtol=1e-10, atol=1e-12)


def test_fd_radius_is_a_search_option(setup, tmp_path):
    from robustnas.search.config import SearchConfig
    from robustnas.search.searcher import Searcher

    config = SearchConfig(dataset="synthetic", dataset_options={"n_train": 32, "n_test": 8},
                          C=4, layers=3, batch_size=8, epochs=1, device="cpu", order=2,
                          fd_radius=0.05, out=str(tmp_path / "run"))
    assert Searcher(config, show_progress=False).architect.fd_radius == 0.05

    assert SearchConfig().fd_radius == 0.01  # DARTS' value stays the default
    for bad in (0.0, -1e-3, float("inf"), float("nan")):
        with pytest.raises(UsageError, match="fd_radius"):
            SearchConfig(fd_radius=bad).validate()
    # the radius is what the architect uses: a different radius, a different estimate
    net, arch, (x, _), (y, _) = setup
    vector = [torch.ones_like(p) for p in net.weights()]
    a = arch.hessian_vector_product(vector, x, y, r=1e-2)
    b = arch.hessian_vector_product(vector, x, y, r=1e-5)
    assert any(not torch.allclose(p, q) for p, q in zip(a, b))
