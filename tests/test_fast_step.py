"""The default (fast) supernet path equals the reference DARTS evaluation to float rounding:
outputs, weight and α gradients, first- and second-order steps, with and without edge
weights; cached parameter lists; one-op drop-path; tiny channels_last layers."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from robustnas.search.architect import Architect, weight_step
from robustnas.search.objective import RegularizerSet
from robustnas.space.arch_sampler import ArchSampler, CellWeights
from robustnas.space.darts.network import drop_path
from robustnas.space.darts.ops import FactorizedReduce
from robustnas.space.darts.supernet import SuperNet


def _pair(**kwargs) -> tuple[SuperNet, SuperNet]:
    torch.manual_seed(0)
    fast = SuperNet(**{"C": 4, "num_classes": 5, "layers": 3, **kwargs})
    with torch.no_grad():  # non-trivial α so every op matters
        fast.alpha_normal.normal_()
        fast.alpha_reduce.normal_()
    ref = copy.deepcopy(fast).use_reference_path()
    return fast, ref


def _batch(n: int = 6, c: int = 3, size: int = 8, seed: int = 1
           ) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=gen), torch.randint(0, 5, (n,), generator=gen)


def _close(a: torch.Tensor, b: torch.Tensor, what: str, rel: float = 2e-5) -> None:
    a, b = a.detach(), b.detach()
    scale = max(float(b.abs().max()), 1e-6)
    assert float((a - b).abs().max()) <= rel * scale + 1e-7, what


def _grads(model: SuperNet, x: torch.Tensor, y: torch.Tensor):
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    params = [p for _, p in model.named_parameters()]
    return logits, torch.autograd.grad(loss, params, allow_unused=True)


class _EdgeSampler(ArchSampler):
    """Softmax op weights plus fixed random edge weights (as the Lipschitz sampler has)."""

    def forward(self, alpha: torch.Tensor, reduction: bool) -> CellWeights:
        gen = torch.Generator().manual_seed(7 + int(reduction))
        return CellWeights(ops=torch.softmax(alpha, dim=-1),
                           edges=0.5 + torch.rand(alpha.shape[0], generator=gen))


@pytest.mark.parametrize("edge_weights", [False, True])
def test_forward_and_gradients_match_reference(edge_weights):
    fast, ref = _pair()
    if edge_weights:
        fast.set_arch_sampler(_EdgeSampler())
        ref.set_arch_sampler(_EdgeSampler())
    x, y = _batch()
    out_f, grads_f = _grads(fast, x, y)
    out_r, grads_r = _grads(ref, x, y)
    _close(out_f, out_r, "logits")
    names = [n for n, _ in fast.named_parameters()]
    for name, gf, gr in zip(names, grads_f, grads_r):
        if gr is None:
            assert gf is None or not gf.any(), name
            continue
        _close(gf, gr, name)


def test_grey_odd_sized_input_matches_reference():
    fast, ref = _pair(in_channels=1, mean=(0.5,), std=(0.25,))
    x, y = _batch(c=1, size=7)
    _close(_grads(fast, x, y)[0], _grads(ref, x, y)[0], "logits")


@pytest.mark.parametrize("order", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_search_steps_match_reference(order):
    """Two full search steps from the same start. Rounding differs between the paths
    (summation order, memory layout), and an activation within rounding distance of a ReLU
    kink then takes the other branch, which moves a gradient by far more than rounding; the
    tolerance after several steps is therefore 1e-3 of the largest value (a wrong term,
    e.g. a skipped operation, moves α by orders of magnitude more)."""
    results = []
    x_t, y_t = _batch()
    x_v, y_v = _batch(n=6, seed=2)
    for model in _pair():
        regs = RegularizerSet("none")
        regs.setup(model)
        w_opt = torch.optim.SGD(model.weights(), lr=0.05, momentum=0.9, weight_decay=3e-4)
        # SGD, not Adam: Adam's g/sqrt(v) turns rounding noise in near-zero α gradients
        # into full-size steps, which would compare the optimiser, not the two paths.
        a_opt = torch.optim.SGD(model.arch_parameters(), lr=0.5)
        arch = Architect(model, a_opt, w_opt, regs, nn.CrossEntropyLoss(), order=order)
        for step in range(2):
            arch.step(x_t, y_t, x_v, y_v, 0.05, epoch=0, step=step, total_epochs=1)
            weight_step(model, w_opt, x_t, y_t, nn.CrossEntropyLoss(), 5.0, regs)
        results.append(dict(model.named_parameters()))
    fast, ref = results
    for name in ref:
        _close(fast[name], ref[name], name, rel=1e-3)


def test_parameter_lists_are_cached_and_refreshed():
    fast, ref = _pair()
    walked = [n for n, _ in ref.named_weights()]
    assert [n for n, _ in fast.named_weights()] == walked
    assert fast.weights()[0] is fast.weights()[0]
    before = len(fast.arch_parameters())
    fast.set_arch_sampler(_Owned())
    assert len(fast.arch_parameters()) == before + 1
    assert len(fast.weights()) == len(walked)
    fast.to(torch.float64)  # parameters may change identity under to(): cache dropped
    assert all(p.dtype == torch.float64 for p in fast.weights())
    assert {id(p) for p in fast.weights()} == {id(p) for _, p in fast.named_parameters()
                                               if not fast._is_arch(_)}


class _Owned(ArchSampler):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))


def test_drop_path_is_one_multiply_with_the_same_values():
    x = torch.randn(64, 3, 4, 4)
    torch.manual_seed(3)
    out = drop_path(x, 0.25)
    torch.manual_seed(3)
    mask = torch.empty(64, 1, 1, 1).bernoulli_(0.75)
    torch.testing.assert_close(out, x / 0.75 * mask)
    assert drop_path(x, 0.0) is x


@pytest.mark.parametrize("channels", [2, 4, 6])
def test_tiny_factorized_reduce_in_channels_last(channels):
    # torch's CPU backward of a strided 1x1 conv in channels_last corrupts the heap for
    # 2..6 input channels; FactorizedReduce avoids it and stays equal to the plain layout.
    torch.manual_seed(0)
    op = FactorizedReduce(channels, 2 * channels)
    twin = copy.deepcopy(op).to(memory_format=torch.channels_last)
    x = torch.randn(2, channels, 8, 8, requires_grad=True)
    xc = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    for _ in range(3):
        out, out_cl = op(x), twin(xc)
        out.square().sum().backward()
        out_cl.square().sum().backward()
    _close(out_cl.detach(), out.detach(), "output")
    _close(xc.grad, x.grad, "input gradient")
    _close(twin.conv_1.weight.grad, op.conv_1.weight.grad, "weight gradient")
