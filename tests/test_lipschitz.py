"""Log-normal Lipschitz method: operator norms against explicit matrices, per-op bounds against
the ops themselves, Fenton–Wilkinson against Monte Carlo, gradients, derivation, resume."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustnas.errors import UsageError
from robustnas.lipschitz.moments import fenton_wilkinson, lognormal_sums
from robustnas.lipschitz.spectral import (
    avg_pool_norm,
    conv_power_iteration,
    matrix_power_iteration,
    max_pool_bound,
)
from robustnas.search.objective import RegularizerSet
from robustnas.search.regularizers import REGULARIZERS, StepContext
from robustnas.search.regularizers.lipschitz import LogNormalLipschitz
from robustnas.space.darts.lipschitz_constants import SupernetLipschitz
from robustnas.space.darts.lipschitz_moments import network_log_moments
from robustnas.space.darts.supernet import SuperNet
from robustnas.space.lognormal_sampler import LogNormalArchSampler


def _explicit(fn, shape: tuple[int, ...]) -> torch.Tensor:
    """The matrix of a linear map on tensors of ``shape`` (batch 1), from basis vectors."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=torch.float64).view(n, *shape)
    return fn(basis).reshape(n, -1).T


def _top_singular(matrix: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(matrix.detach(), ord=2))


# -- operator norms ------------------------------------------------------------------------
@pytest.mark.parametrize("stride,padding,dilation,size", [(1, 1, 1, 5), (2, 1, 1, 5),
                                                           (2, 2, 2, 7), (1, 0, 1, 4)])
def test_conv_power_iteration_matches_explicit_matrix(stride, padding, dilation, size):
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64)
    matrix = _explicit(lambda b: F.conv2d(b, weight, None, stride, padding, dilation),
                       (2, size, size))
    v = torch.randn(1, 2, size, size, generator=gen, dtype=torch.float64)
    sigma, v = conv_power_iteration(weight, v, stride=stride, padding=padding,
                                    dilation=dilation, iters=300)
    assert float(sigma) == pytest.approx(_top_singular(matrix), rel=1e-6)
    # persistence: one more iteration from the returned vector keeps the value
    again, _ = conv_power_iteration(weight, v, stride=stride, padding=padding,
                                    dilation=dilation, iters=1)
    assert float(again) == pytest.approx(float(sigma), rel=1e-8)


def test_depthwise_per_channel_norms():
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(4, 1, 5, 5, generator=gen, dtype=torch.float64)
    v = torch.randn(1, 4, 6, 6, generator=gen, dtype=torch.float64)
    sigma, _ = conv_power_iteration(weight, v, stride=2, padding=4, dilation=2, groups=4,
                                    iters=400, per_channel=True)
    for c in range(4):
        matrix = _explicit(lambda b, c=c: F.conv2d(b, weight[c:c + 1], None, 2, 4, 2), (1, 6, 6))
        assert float(sigma[c]) == pytest.approx(_top_singular(matrix), rel=1e-6)


def test_matrix_power_iteration_batch():
    gen = torch.Generator().manual_seed(2)
    mats = torch.randn(5, 3, 4, generator=gen, dtype=torch.float64)
    sigma, _ = matrix_power_iteration(mats, torch.randn(5, 4, generator=gen,
                                                        dtype=torch.float64), iters=300)
    torch.testing.assert_close(sigma, torch.linalg.matrix_norm(mats, ord=2))


@pytest.mark.parametrize("stride,size", [(1, 8), (2, 8), (1, 5), (2, 7)])
def test_pool_bounds(stride, size):
    def avg(b):
        return F.avg_pool2d(b, 3, stride, 1, count_include_pad=False)
    assert avg_pool_norm(size, size, 3, stride, 1) == pytest.approx(
        _top_singular(_explicit(avg, (1, size, size))), rel=1e-10)
    bound = max_pool_bound(size, size, 3, stride, 1)
    assert bound == (3.0 if stride == 1 else 2.0)
    # attained by a single-pixel difference, and never exceeded on random pairs
    delta = torch.zeros(1, 1, size, size, dtype=torch.float64)
    delta[0, 0, 1, 1] = 1.0  # odd offsets are covered by two stride-2 windows
    assert F.max_pool2d(delta, 3, stride, 1).norm() == pytest.approx(bound)
    gen = torch.Generator().manual_seed(3)
    x, y = (torch.randn(200, 1, size, size, generator=gen, dtype=torch.float64)
            for _ in range(2))
    ratio = ((F.max_pool2d(x, 3, stride, 1) - F.max_pool2d(y, 3, stride, 1)).flatten(1)
             .norm(dim=1) / (x - y).flatten(1).norm(dim=1))
    assert ratio.max() <= bound + 1e-12


# -- per-operation constants -----------------------------------------------------------------
@pytest.fixture
def trained_supernet():
    """A tiny supernet with non-trivial BN running statistics."""
    torch.manual_seed(0)
    net = SuperNet(C=4, num_classes=10, layers=3, steps=2, multiplier=2, in_channels=1)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(8, 1, 8, 8) * 3)
    return net


def test_op_constants_bound_every_operation(trained_supernet):
    net = trained_supernet
    est = SupernetLipschitz(net, (1, 8, 8), seed=0)
    lam = est.update(iters=1, init_iters=300)
    assert lam.shape == (3, 5, 8)
    prims = net.primitives
    assert torch.all(lam[:, :, prims.index("none")] == 0)
    assert torch.all(lam[0, :, prims.index("skip_connect")] == 1)  # normal cell, stride 1
    shapes = est.shapes
    net.eval()
    gen = torch.Generator().manual_seed(4)
    for c, e in [(0, 0), (1, 0), (1, 4), (2, 1)]:  # normal, reduction (stride 2 and 1) cells
        mixed = net.cells[c].edges[e]
        conv = next(m for m in mixed.modules() if isinstance(m, nn.Conv2d))
        shape = (64, *shapes[conv][1:])
        x, y = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
        y = x + 1e-2 * y  # near pairs probe the local gain of the piecewise-linear ops
        for o, op in enumerate(mixed.ops):
            with torch.no_grad():
                gain = ((op(x) - op(y)).flatten(1).norm(dim=1)
                        / (x - y).flatten(1).norm(dim=1)).max()
            assert gain <= lam[c, e, o] * (1 + 1e-4), (c, e, prims[o])


def test_sep_conv_constant_is_the_product_of_its_layers(trained_supernet):
    net = trained_supernet
    est = SupernetLipschitz(net, (1, 8, 8))
    lam = est.update(iters=1, init_iters=400)
    sep = net.cells[1].edges[0].ops[net.primitives.index("sep_conv_3x3")]  # stride 2 first
    expected = 1.0
    for block in sep:
        relu, dw, pw, bn = block
        size = est.shapes[dw][-1]
        per_channel = [_top_singular(_explicit(
            lambda b, c=c, dw=dw: F.conv2d(b, dw.weight[c:c + 1].double(), None, dw.stride,
                                           dw.padding, dw.dilation), (1, size, size)))
            for c in range(dw.in_channels)]
        expected *= max(per_channel)
        expected *= _top_singular(pw.weight.detach().double().flatten(1))
        expected *= float((bn.running_var.double() + bn.eps).rsqrt().max())
    assert float(lam[1, 0, net.primitives.index("sep_conv_3x3")]) == pytest.approx(expected,
                                                                                  rel=1e-4)
    fr = net.cells[1].edges[0].ops[net.primitives.index("skip_connect")]
    expected_fr = max(_top_singular(fr.conv_1.weight.detach().double().flatten(1)),
                      _top_singular(fr.conv_2.weight.detach().double().flatten(1)))
    expected_fr *= float((fr.bn.running_var.double() + fr.bn.eps).rsqrt().max())
    assert float(lam[1, 0, net.primitives.index("skip_connect")]) == pytest.approx(
        expected_fr, rel=1e-4)
    paper = SupernetLipschitz(net, (1, 8, 8), pool_bound="paper").update()
    max_idx = net.primitives.index("max_pool_3x3")
    assert torch.all(paper[:, :, max_idx] < lam[:, :, max_idx])


# -- moment matching -------------------------------------------------------------------------
def test_lognormal_sums_reduce_to_textbook_fenton_wilkinson():
    mu = torch.tensor([0.1, -0.3, 0.5], dtype=torch.float64)
    sigma = torch.tensor([0.2, 0.4, 0.3], dtype=torch.float64)
    m, cov = lognormal_sums(torch.ones(1, 3, dtype=torch.float64), mu, torch.diag(sigma ** 2))
    ref_mu, ref_sigma = fenton_wilkinson(mu, sigma)
    torch.testing.assert_close(m[0], ref_mu)
    torch.testing.assert_close(cov[0, 0].sqrt(), ref_sigma)


def _sampler(edges: int, steps: int, std: float, seed: int = 0) -> LogNormalArchSampler:
    torch.manual_seed(seed)
    sampler = LogNormalArchSampler(edges, 8, steps, rank=1, init_std=std)
    with torch.no_grad():
        for name, p in sampler.named_parameters():
            if "factor" in name:
                p.normal_(0, std / 2)
            if "edges_mu" in name:
                p.normal_(0, 0.5)
    return sampler


def test_moment_matching_agrees_with_monte_carlo():
    torch.manual_seed(0)
    steps, edges, cells = 4, 14, 5
    sampler = _sampler(edges, steps, std=0.3)
    alphas = {"normal": torch.randn(edges, 8) * 0.5, "reduce": torch.randn(edges, 8) * 0.5}
    lambdas = torch.rand(cells, edges, 8) * 3
    lambdas[:, :, 0] = 0.0  # none
    reduction = torch.tensor([False, True, False, True, False])
    mu_f, var_f = network_log_moments(sampler, alphas, lambdas, reduction)

    n = 20000
    total = torch.zeros(n, dtype=torch.float64)
    with torch.no_grad():
        for kind, red in (("normal", False), ("reduce", True)):
            log_a, log_b = sampler.log_weights(alphas[kind], red, samples=n)
            weights = (log_a + log_b.unsqueeze(-1)).exp().double()  # (n, edges, ops)
            for c in (reduction == red).nonzero().flatten().tolist():
                terms = (weights * lambdas[c].double()).sum(-1)  # (n, edges)
                for a, b in sampler.node_ranges:
                    total += terms[:, a:b].sum(-1).log()
    mc_mean, mc_std = float(total.mean()), float(total.std())
    sigma_f = float(var_f.detach().sqrt())
    # Stated tolerance: the per-node log-normal approximation is accurate to a few percent
    # of σ_F at these noise levels (σ ≈ 0.3 per weight), far beyond the MC error.
    assert abs(float(mu_f.detach()) - mc_mean) < 0.05 * mc_std + 4 * mc_std / math.sqrt(n)
    assert sigma_f == pytest.approx(mc_std, rel=0.05)
    # Sharing α across cells matters: treating cells as independent underestimates σ_F.
    assert mc_std > 1.5 * math.sqrt(float(var_f.detach()) / cells)


# -- the regulariser -------------------------------------------------------------------------
def _ctx(net, x, y, epoch=0):
    net.train()
    logits = net(x)
    loss = F.cross_entropy(logits, y)
    return StepContext(net, x, y, logits, loss, F.cross_entropy, "arch", epoch, 0, 1)


def test_setup_installs_the_sampler_and_gradients_reach_mu_and_factors(tiny_supernet,
                                                                       tiny_batch):
    net = tiny_supernet
    before = {n for n, _ in net.named_arch_parameters()}
    reg = LogNormalLipschitz(lambda_bar=0.2)  # tight, so the penalty is active
    reg.setup(net)
    names = {n for n, _ in net.named_arch_parameters()}
    assert before < names and any("factor" in n for n in names)
    assert all(n in net.state_dict() for n in names)
    term, logs = reg.loss(_ctx(net, *tiny_batch))
    assert logs["excess"] > 0 and term > 0
    assert {"mu_F", "sigma_F", "prob_within", "lambda/sep_conv_3x3"} <= set(logs)
    assert all(p.grad is None for p in net.parameters())
    grads = dict(zip([n for n, _ in net.named_arch_parameters()],
                     torch.autograd.grad(term, net.arch_parameters(), allow_unused=True)))
    for name, g in grads.items():
        assert g is not None and g.abs().sum() > 0, name
    # the weights do not depend on the term at all (constants are computed without autograd)
    w_grads = torch.autograd.grad(term, net.weights(), allow_unused=True)
    assert all(g is None for g in w_grads)


def test_sampler_median_in_eval_and_genotype_from_mu(tiny_supernet):
    net = tiny_supernet
    reg = LogNormalLipschitz()
    reg.setup(net)
    sampler = net.arch_sampler
    with torch.no_grad():
        net.alpha_normal.zero_()
        net.alpha_normal[:, net.primitives.index("dil_conv_5x5")] = 2.0
        net.alpha_normal[:, net.primitives.index("sep_conv_3x3")] = 1.0
        net.alpha_normal[0, net.primitives.index("sep_conv_3x3")] = 3.0  # edge 0: sep3
        sampler.normal_edges_mu.zero_()
        sampler.normal_edges_mu[1] = 5.0  # node 0 prefers input 1
    net.eval()
    weights = sampler(net.alpha_normal, False)
    torch.testing.assert_close(weights.ops, torch.softmax(net.alpha_normal, -1))
    torch.testing.assert_close(weights.edges[:2], torch.softmax(sampler.normal_edges_mu[:2], 0))
    net.train()
    sampled = sampler(net.alpha_normal, False)
    assert not torch.allclose(sampled.ops, weights.ops)
    geno = net.genotype()
    assert geno.normal[0] == ("dil_conv_5x5", 1)  # β ranks input 1 first
    assert geno.normal[1] == ("sep_conv_3x3", 0)  # op from μ_α
    assert all(op == "dil_conv_5x5" for op, _ in geno.normal[2:])
    no_beta = LogNormalLipschitz(derive_with_beta=False)
    no_beta.setup(net)
    assert net.genotype().normal[0] == ("sep_conv_3x3", 0)


def test_state_dict_restores_power_iteration_vectors(tiny_supernet, tiny_batch):
    net = tiny_supernet
    reg = LogNormalLipschitz(init_power_iters=2)
    reg.setup(net)
    reg.loss(_ctx(net, *tiny_batch))
    state = reg.state_dict()
    assert state["vectors"] and all(isinstance(v, torch.Tensor) for v in state["vectors"].values())
    expected = reg.lipschitz_constants(tiny_batch[0].shape[1:])
    other = LogNormalLipschitz(init_power_iters=2, seed=7)
    other.setup(net)
    other.load_state_dict(state)
    # same vectors → the same next update (a fresh seed would give different estimates)
    reg.load_state_dict(state)
    torch.testing.assert_close(other.lipschitz_constants(tiny_batch[0].shape[1:]),
                               reg.lipschitz_constants(tiny_batch[0].shape[1:]))
    assert expected.shape == (3, 14, 8)


def test_augmented_lagrangian_multiplier_and_options(tiny_supernet, tiny_batch):
    net = tiny_supernet
    regs = RegularizerSet("lipschitz:0.5", {"lipschitz": {"method": "augmented_lagrangian",
                                                          "lambda_bar": "1/10", "eta": 0.9}})
    regs.setup(net)
    reg = regs.terms[0][2]
    _, logs = regs.loss(_ctx(net, *tiny_batch))
    assert logs["lipschitz/multiplier"] > 0
    assert reg.state_dict()["multiplier"] == logs["lipschitz/multiplier"]
    assert REGULARIZERS.get("lipschitz") is LogNormalLipschitz
    for bad in ({"eta": 1.0}, {"lambda_bar": 0}, {"rank": -1}, {"location": "median"},
                {"method": "admm"}, {"nope": 1}):
        with pytest.raises(UsageError):
            LogNormalLipschitz(**bad)
    with pytest.raises(UsageError):
        LogNormalLipschitz().setup(nn.Linear(2, 2))
