"""Hessian power iteration against explicit Hessians (eigvalsh) of tiny functions and models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustnas.search.curvature import hessian_top_eigenvalue, hessian_vector_product


def _dominant(matrix: torch.Tensor) -> float:
    eig = torch.linalg.eigvalsh(matrix)
    return float(eig[eig.abs().argmax()])


def test_quadratic_form_with_known_spectrum():
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor([5.0, 2.0, 1.0, 0.5, -1.0, 0.1], dtype=torch.float64)) @ q.T
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    value = hessian_top_eigenvalue(lambda: 0.5 * x @ a @ x, [x], iters=200, tol=1e-10,
                                   generator=torch.Generator().manual_seed(1))
    assert value == pytest.approx(5.0, rel=1e-6)


def test_negative_dominant_eigenvalue_keeps_its_sign():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    a = torch.diag(torch.tensor([1.0, -4.0, 0.5], dtype=torch.float64))
    value = hessian_top_eigenvalue(lambda: 0.5 * x @ a @ x, [x], iters=100, tol=1e-12,
                                   generator=torch.Generator().manual_seed(0))
    assert value == pytest.approx(-4.0, rel=1e-6)


def test_model_parameters_split_over_tensors_match_the_explicit_hessian():
    torch.manual_seed(0)
    lin1, lin2 = nn.Linear(3, 4).double(), nn.Linear(4, 2).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1])
    params = [lin1.weight, lin2.weight]  # two tensors: cross terms must be handled
    shapes = [p.shape for p in params]

    def loss_of(flat: torch.Tensor) -> torch.Tensor:
        w1, w2 = flat[:12].view(shapes[0]), flat[12:].view(shapes[1])
        hidden = torch.tanh(x @ w1.T + lin1.bias)
        return nn.functional.cross_entropy(hidden @ w2.T + lin2.bias, y)

    flat = torch.cat([p.detach().flatten() for p in params])
    explicit = torch.autograd.functional.hessian(loss_of, flat)
    value = hessian_top_eigenvalue(lambda: nn.functional.cross_entropy(
        lin2(torch.tanh(lin1(x))), y), params, iters=500, tol=1e-10,
        generator=torch.Generator().manual_seed(0))
    assert value == pytest.approx(_dominant(explicit), rel=1e-5)


def test_input_hessian_of_a_model_loss():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softplus(), nn.Flatten(),
                        nn.Linear(2 * 4, 3)).double()
    x0 = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    y = torch.tensor([0, 2])
    explicit = torch.autograd.functional.hessian(
        lambda v: nn.functional.cross_entropy(net(v.view_as(x0)), y, reduction="sum"),
        x0.flatten())
    x = x0.clone().requires_grad_(True)
    value = hessian_top_eigenvalue(
        lambda: nn.functional.cross_entropy(net(x), y, reduction="sum"), [x], iters=500,
        tol=1e-10, generator=torch.Generator().manual_seed(0))
    assert value == pytest.approx(_dominant(explicit), rel=1e-5)
    # The generic HVP agrees with the explicit matrix too.
    loss = nn.functional.cross_entropy(net(x), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, [x], create_graph=True)
    v = torch.randn_like(x)
    (hv,) = hessian_vector_product([g], [x], [v])
    torch.testing.assert_close(hv.flatten(), explicit @ v.flatten())


def test_zero_hessian_and_unused_parameters_give_zero():
    x = torch.randn(4, requires_grad=True)
    unused = torch.randn(2, requires_grad=True)
    assert hessian_top_eigenvalue(lambda: (3 * x).sum(), [x, unused]) == 0.0


def test_early_stop_and_reproducible_start():
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    calls = []

    def loss():
        calls.append(1)
        return (x ** 4).sum()

    a = hessian_top_eigenvalue(loss, [x], iters=50, generator=torch.Generator().manual_seed(5))
    b = hessian_top_eigenvalue(loss, [x], iters=50, generator=torch.Generator().manual_seed(5))
    assert a == b
    assert a == pytest.approx(float((12 * x.detach() ** 2).max()), rel=1e-2)
    assert len(calls) == 2  # one forward per call, however many iterations
