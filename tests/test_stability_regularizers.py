"""β-DARTS' beta decay and the input-Jacobian penalty: equal to the authors' formulas on
identical inputs, differentiable in α (or w), registered, composable, and end to end in
a tiny search on DARTS and NB201."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robustnas.cli import main
from robustnas.errors import UsageError
from robustnas.search.objective import RegularizerSet
from robustnas.search.regularizers import REGULARIZERS, StepContext
from robustnas.search.regularizers.beta import alphas, beta_decay
from robustnas.search.regularizers.jacobian import jacobian_penalty
from robustnas.space.darts.supernet import SuperNet


def _reference_mlc_loss(arch_param: torch.Tensor) -> torch.Tensor:
    """The authors' term (Beta-DARTS optimizers/darts/architect.py, mlc_loss), ported:
    the mean over rows of logsumexp(α)."""
    return torch.mean(torch.logsumexp(arch_param, dim=-1))


def _reference_jacobian(x: torch.Tensor, y: torch.Tensor, vs: list[torch.Tensor]) -> torch.Tensor:
    """The authors' estimator (facebookresearch/jacobian_regularizer, JacobianReg.forward),
    ported with the directions given: (1/2)·Σ_p C·‖Jv_p‖²/(n·B)."""
    batch, classes = y.shape
    total = 0
    for v in vs:
        (jv,) = torch.autograd.grad(y.reshape(-1), x, v.reshape(-1), retain_graph=True,
                                    create_graph=True)
        total = total + classes * torch.norm(jv) ** 2 / (len(vs) * batch)
    return 0.5 * total


def _supernet() -> SuperNet:
    torch.manual_seed(0)
    model = SuperNet(C=4, num_classes=10, layers=3)
    with torch.no_grad():
        for p in alphas(model):
            p.normal_(0, 0.5)
    return model


def test_beta_decay_equals_the_authors_term_and_its_gradient_is_softmax():
    model = _supernet()
    params = alphas(model)
    assert [tuple(p.shape) for p in params] == [(14, 8), (14, 8)]
    ours = beta_decay(params)
    reference = _reference_mlc_loss(torch.cat(params))
    assert torch.allclose(ours, reference, atol=1e-7, rtol=0)
    grads = torch.autograd.grad(ours, params)
    for p, g in zip(params, grads):  # d/dα mean LSE = softmax(α) / |E|
        assert torch.allclose(g, F.softmax(p, dim=-1) / 28, atol=1e-7)


def test_beta_schedule_follows_the_authors_code():
    reg = REGULARIZERS.get("beta")()
    assert [reg.weight(e) for e in (0, 1, 49)] == [0.0, 0.5, 24.5]  # 0 + 50·epoch/100
    assert REGULARIZERS.get("beta")(lambda0=1, slope=0).weight(30) == 1.0
    with pytest.raises(UsageError, match="slope"):
        REGULARIZERS.get("beta")(slope=-1)


def _tiny_cnn() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                               torch.nn.Linear(3 * 4 * 4, 5))


def test_jacobian_exact_mode_is_the_frobenius_norm():
    net = _tiny_cnn()
    x = torch.rand(4, 1, 6, 6)
    jac = torch.autograd.functional.jacobian(lambda inp: net(inp), x)  # (B, C, B, 1, 6, 6)
    exact = sum(jac[b, :, b].pow(2).sum() for b in range(4)) / (2 * 4)
    assert torch.allclose(jacobian_penalty(net, x, -1), exact, rtol=1e-5)


def test_jacobian_random_mode_equals_the_authors_estimator_on_identical_directions():
    net = _tiny_cnn()
    x = torch.rand(4, 1, 6, 6)
    gen = torch.Generator().manual_seed(3)
    vs = []
    for _ in range(3):
        v = torch.randn(4, 5, generator=gen)
        vs.append(v / v.norm(dim=1, keepdim=True))
    ours = jacobian_penalty(net, x, directions=vs)
    xr = x.clone().requires_grad_(True)
    reference = _reference_jacobian(xr, net(xr), vs)
    assert torch.allclose(ours, reference, rtol=1e-6)
    # unbiased: many random projections approach the exact value
    torch.manual_seed(0)
    estimate = jacobian_penalty(net, x, 2000, create_graph=False)
    assert estimate.item() == pytest.approx(jacobian_penalty(net, x, -1).item(), rel=0.1)


def test_jacobian_reaches_alpha_on_the_arch_step_and_weights_on_request():
    model = _supernet()
    x, y = torch.rand(4, 3, 16, 16), torch.randint(0, 10, (4,))
    logits = model(x)
    ctx = StepContext(model, x, y, logits, F.cross_entropy(logits, y), F.cross_entropy,
                      "arch", 0, 0, 1)
    term, logs = REGULARIZERS.get("jacobian")().loss(ctx)
    grads = torch.autograd.grad(term, alphas(model), allow_unused=True)
    assert logs["R"] > 0 and all(g is not None and g.abs().sum() > 0 for g in grads)
    assert REGULARIZERS.get("jacobian")(on="weights").phases == frozenset({"weights"})
    assert REGULARIZERS.get("jacobian")(on="both").phases == frozenset({"arch", "weights"})


def test_new_terms_compose_with_the_others_by_name_and_weight():
    regs = RegularizerSet("advrush:1,beta:0.5,jacobian:2")
    assert regs.describe() == "advrush:1,beta:0.5,jacobian:2"


@pytest.mark.parametrize("space", [pytest.param("darts", marks=pytest.mark.slow), "nb201"])
def test_tiny_searches_with_beta_and_jacobian(tmp_path, capsys, space):
    args = ["search", "--dataset", "digits", "--channels", "4", "--layers",
            "3", "--batch-size", "8", "--epochs", "2",
            "--device", "cpu", "--seed", "0", "--quiet", "--regularizer", "beta,jacobian",
            "--set", "max_steps_per_epoch=1", "--set", "draw_every=0",
            "--set", "eval_hessian_every=0", "--out", str(tmp_path / space)]
    if space == "nb201":
        args += ["--space", "nb201"]
    assert main(args) == 0, capsys.readouterr().err
    assert (tmp_path / space / "genotype.json").is_file()
