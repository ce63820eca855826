"""SDARTS (sdarts-rs, sdarts-adv), DrNAS (drnas) and the adversarial weight step
(w_objective): each changes what it should and nothing else, matches a minimal port of the
authors' code on identical inputs, composes with the other regularisers, runs on the DARTS
and NB201 supernets, resumes bit-identically, and refuses what cannot work in one line.

The ports below are written from the authors' public code (xiangning-chen/SmoothDARTS:
``attacker/perturb.py``, ``sota/cnn/train_search.py``, ``sota/cnn/model_search.py``;
xiangning-chen/DrNAS: ``utils.py``, ``DARTS-space/model_search.py``) and kept as close to
it as the test allows; they live here only, never in robustnas.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Dirichlet, kl_divergence

from robustnas.engine import on_step
from robustnas.errors import UsageError
from robustnas.io import load_checkpoint
from robustnas.search.architect import Architect, weight_step
from robustnas.search.objective import RegularizerSet
from robustnas.search.regularizers import REGULARIZERS
from robustnas.search.regularizers.beta import alphas
from robustnas.search.regularizers.drnas import kl_to_uniform
from robustnas.search.regularizers.sdarts import project_rows
from robustnas.search.weight_objective import (
    build_weight_objective,
    check_weight_objective,
    resolved_settings,
)
from robustnas.space.arch_sampler import ArchSampler, CellWeights
from robustnas.space.darts.supernet import SuperNet, derive_cell
from robustnas.space.dirichlet_sampler import DirichletArchSampler, dirichlet_mean
from robustnas.space.nb201.supernet import NB201SuperNet

CE = F.cross_entropy


# -- fixtures -------------------------------------------------------------------------------
def _darts() -> SuperNet:
    torch.manual_seed(0)
    model = SuperNet(C=4, num_classes=10, layers=3, steps=4, in_channels=1, mean=(0.5,),
                     std=(0.25,))
    with torch.no_grad():  # spread α so that softmax(α) is not uniform
        for p in alphas(model):
            p.normal_(0, 0.5)
    return model


def _nb201() -> NB201SuperNet:
    torch.manual_seed(0)
    model = NB201SuperNet(C=4, N=1, num_classes=10, in_channels=1, mean=(0.5,), std=(0.25,))
    with torch.no_grad():
        model.alpha.normal_(0, 0.5)
    return model


SUPERNETS = {"darts": _darts, "nb201": _nb201}


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(8, 1, 8, 8, generator=gen), torch.randint(0, 10, (8,), generator=gen)


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.weights(), lr=0.05, momentum=0.9, weight_decay=3e-4)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a
               if a[k].is_floating_point())


def _step(model: nn.Module, spec: str, seed: int = 1, options: dict | None = None,
          objective=None, epoch: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
    """One weight step from the generator state ``seed``; returns (loss, logs)."""
    regs = RegularizerSet(spec, options)
    regs.setup(model)
    x, y = _batch()
    torch.manual_seed(seed)
    _, loss, logs = weight_step(model, _sgd(model), x, y, CE, 5.0, regs, epoch, 0, 10,
                                objective=objective)
    return loss, logs


# -- minimal ports of the authors' code ------------------------------------------------------
class _AlphaIsTheWeights(ArchSampler):
    """The port's supernet forward with ``updateType='weight'``: α used as mixing weights."""

    def forward(self, alpha: torch.Tensor, reduction: bool) -> CellWeights:  # noqa: D102
        return CellWeights(ops=alpha)


def _ref_clip(model: nn.Module) -> None:
    """SmoothDARTS ``Network.clip``."""
    for p in model.arch_parameters():
        for line in p:
            max_index = line.argmax()
            line.data.clamp_(0, 1)
            if line.sum() == 0.0:
                line.data[max_index] = 1.0
            line.data.div_(line.sum())


def _ref_random_alpha(model: nn.Module, x, y, epsilon: float) -> None:
    """SmoothDARTS ``Random_alpha``."""
    for p in model.arch_parameters():
        p.data.add_(torch.zeros_like(p).uniform_(-epsilon, epsilon))
    _ref_clip(model)


def _ref_loss(model: nn.Module, x, y) -> torch.Tensor:
    return CE(model(x), y)


def _ref_pgd_alpha(model: nn.Module, x, y, epsilon: float, steps: int = 7,
                   random_start: bool = True) -> None:
    """SmoothDARTS ``Linf_PGD_alpha`` with its ``Linf_SGD`` (momentum 0, no weight decay:
    p ← p − lr·sign(∇p(−L)))."""
    training = model.training
    if training:
        model.eval()
    arch = model.arch_parameters()
    saved_params = [p.clone() for p in arch]
    lr = 2 * epsilon / steps
    with torch.no_grad():
        loss_before = _ref_loss(model, x, y)
    if random_start:
        for p in arch:
            p.data.add_(torch.zeros_like(p).uniform_(-epsilon, epsilon))
        _ref_clip(model)
    for _ in range(steps):
        loss = -_ref_loss(model, x, y)
        grads = torch.autograd.grad(loss, arch)
        for p, g in zip(arch, grads):
            p.data.add_(torch.sign(g), alpha=-lr)
        diff = [(arch[i] - saved_params[i]).clamp_(-epsilon, epsilon)
                for i in range(len(saved_params))]
        for i, p in enumerate(arch):
            p.data.copy_(diff[i] + saved_params[i])
        _ref_clip(model)
    with torch.no_grad():
        loss_after = _ref_loss(model, x, y)
    if loss_before > loss_after:
        for i, p in enumerate(arch):
            p.data.copy_(saved_params[i])
    if training:
        model.train()


def _ref_weight_step(model: nn.Module, perturb, epsilon: float, seed: int = 1) -> torch.Tensor:
    """SmoothDARTS ``train()`` after the α step: softmax_arch_parameters, perturb, the
    weight step with α as mixing weights, restore_arch_parameters. Returns the loss."""
    x, y = _batch()
    model.train()
    optimizer = _sgd(model)
    saved = [p.clone() for p in model.arch_parameters()]  # _save_arch_parameters
    for p in model.arch_parameters():  # softmax_arch_parameters
        p.data.copy_(F.softmax(p, dim=-1))
    torch.manual_seed(seed)
    perturb(model, x, y, epsilon)
    loss = CE(model(x), y)
    grads = torch.autograd.grad(loss, model.weights())
    for p, g in zip(model.weights(), grads):
        p.grad = g
    nn.utils.clip_grad_norm_(model.weights(), 5.0)
    optimizer.step()
    for p, s in zip(model.arch_parameters(), saved):  # restore_arch_parameters
        p.data.copy_(s)
    return loss.detach()


def _port_of(model: nn.Module) -> nn.Module:
    port = copy.deepcopy(model)
    port.set_arch_sampler(_AlphaIsTheWeights())
    return port


def _ref_dirichlet_weights(x: torch.Tensor) -> torch.Tensor:
    """DrNAS ``process_step_matrix(x, 'dirichlet', None)``: one draw per row."""
    return torch.stack([Dirichlet(F.elu(line) + 1).rsample() for line in x])


def _ref_kl_reg(alphas_normal, alphas_reduce, reg_scale: float) -> torch.Tensor:
    """DrNAS ``Network._get_kl_reg`` with its anchors Dir(1)."""
    q_normal = Dirichlet(F.elu(alphas_normal) + 1)
    q_reduce = Dirichlet(F.elu(alphas_reduce) + 1)
    p_normal = Dirichlet(torch.ones_like(alphas_normal))
    p_reduce = Dirichlet(torch.ones_like(alphas_reduce))
    return reg_scale * (torch.sum(kl_divergence(q_reduce, p_reduce))
                        + torch.sum(kl_divergence(q_normal, p_normal)))


# -- SDARTS ---------------------------------------------------------------------------------
def test_projection_is_the_authors_clip():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(14, 8, generator=gen)
    w[3] = -torch.rand(8, generator=gen)  # all negative: clamps to zero, 1 at the arg-max
    model = _port_of(_darts())
    with torch.no_grad():
        model.alpha_normal.copy_(w)
    _ref_clip(model)
    assert torch.equal(project_rows(w), model.alpha_normal.detach())
    assert project_rows(w)[3].tolist() == F.one_hot(w[3].argmax(), 8).float().tolist()


def test_sdarts_epsilon_follows_the_authors_ramp():
    reg = REGULARIZERS.get("sdarts-rs")()
    assert reg.epsilon(0, 50) == pytest.approx(0.03)
    assert reg.epsilon(25, 50) == pytest.approx(0.03 + 0.27 / 2)
    assert reg.epsilon(49, 50) == pytest.approx(0.03 + 0.27 * 49 / 50)
    assert REGULARIZERS.get("sdarts-adv")(epsilon=0.1, epsilon_start=0.1).epsilon(7, 9) == 0.1
    assert REGULARIZERS.get("sdarts-adv")().options["steps"] == 7


@pytest.mark.parametrize("space", sorted(SUPERNETS))
@pytest.mark.parametrize("name", ["sdarts-rs", "sdarts-adv"])
def test_sdarts_perturbs_the_weight_step_only(space, name):
    model = SUPERNETS[space]()
    clean = copy.deepcopy(model)
    arch_before = [p.detach().clone() for p in model.arch_parameters()]
    counts = {k: int(v) for k, v in model.state_dict().items() if "num_batches" in k}
    assert counts
    model.train()
    loss, logs = _step(model, name)
    clean_loss, _ = _step(clean, "none")
    # α untouched by the weight step (it changes only through the α optimiser) ...
    assert all(torch.equal(a, p) for a, p in zip(arch_before, model.arch_parameters()))
    # ... the hook is gone, the model is back in train mode ...
    assert not model.arch_sampler._forward_hooks and model.training
    # ... the perturbation changed the step's loss and weights ...
    assert float(loss) != float(clean_loss)
    assert _max_diff(_state(model), _state(clean)) > 0
    assert logs[f"regularizer_w/{name}/epsilon"] == pytest.approx(0.03)
    # ... and the attack's eval-mode passes did not count as BN training steps: one
    # train-mode pass, the weight step's own
    after = _state(model)
    assert all(int(after[k]) == n + 1 for k, n in counts.items())


def test_sdarts_leaves_the_arch_step_as_it_is():
    x, y = _batch(3)
    results = []
    for spec in ("none", "sdarts-adv"):
        model = _darts()
        regs = RegularizerSet(spec)
        regs.setup(model)
        arch_opt = torch.optim.Adam(model.arch_parameters(), lr=3e-3, betas=(0.5, 0.999))
        Architect(model, arch_opt, _sgd(model), regs, CE).step(x, y, x, y, 0.05, 0, 0, 10)
        results.append([p.detach().clone() for p in model.arch_parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_sdarts_rs_equals_the_authors_random_smoothing():
    """Max abs difference to the port after one weight step: recorded 0 for the loss, the
    weights and the BN statistics (P(softmax(α) + δ) is computed in the same operations
    from the same uniform draws)."""
    model = _darts()
    port = _port_of(model)
    loss, _ = _step(model, "sdarts-rs", seed=5)
    ref_loss = _ref_weight_step(port, _ref_random_alpha, 0.03, seed=5)
    assert float(loss) == pytest.approx(float(ref_loss), abs=1e-6)
    assert _max_diff(_state(model), _state(port)) < 1e-6


def test_sdarts_adv_equals_the_authors_pgd_on_alpha():
    """Max abs difference to the port after one weight step (7 PGD steps, ε = 0.1, the
    perturbation kept): recorded 1.2e-7 on the weights and BN statistics on both supernets,
    2.4e-7 (DARTS) and 0 (NB201) on the loss; the PGD iterates are the port's, the weight
    step mixes with P(ᾱ + (iterate − ᾱ)), which rounds differently from the iterate."""
    options = {"sdarts-adv": {"epsilon": 0.1, "epsilon_start": 0.1}}
    for space in ("darts", "nb201"):
        model = SUPERNETS[space]()
        port = _port_of(model)
        loss, logs = _step(model, "sdarts-adv", seed=7, options=options)
        ref_loss = _ref_weight_step(port, _ref_pgd_alpha, 0.1, seed=7)
        assert logs["regularizer_w/sdarts-adv/kept"] == 1.0
        assert logs["regularizer_w/sdarts-adv/loss_gain"] > 0
        assert float(loss) == pytest.approx(float(ref_loss), abs=1e-6)
        assert _max_diff(_state(model), _state(port)) < 1e-6, space


# -- DrNAS ----------------------------------------------------------------------------------
def test_dirichlet_draws_are_on_the_simplex_differ_and_carry_the_pathwise_gradient():
    model = _darts()
    RegularizerSet("drnas").setup(model)
    assert isinstance(model.arch_sampler, DirichletArchSampler)
    model.train()
    first = model.mixing_weights()["normal"].ops
    second = model.mixing_weights()["normal"].ops
    for w in (first, second):
        assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(14), atol=1e-6)
    assert not torch.equal(first, second)
    (grad,) = torch.autograd.grad((first * torch.arange(8.0)).sum(), [model.alpha_normal])
    assert grad.abs().sum() > 0
    model.eval()  # eval passes use the mean, deterministically
    mean = model.mixing_weights()["normal"].ops
    assert torch.equal(mean, model.mixing_weights()["normal"].ops)
    assert torch.allclose(mean, dirichlet_mean(model.alpha_normal))


def test_dirichlet_sampling_and_kl_equal_the_authors():
    """Same generator state, same α: the draws equal the port's (normal then reduce, as
    the authors' forward draws them; recorded max abs difference 1.5e-8, in 4 of 112
    entries: the same gamma variates, normalised by a batched sum that rounds differently
    from the per-edge one); the pathwise gradient of a loss of the draws and the KL term
    and its gradient agree to rounding (< 1e-6 and rel. 1e-6)."""
    model = _darts()
    RegularizerSet("drnas").setup(model)
    model.train()
    torch.manual_seed(11)
    ours = model.mixing_weights()
    ours_loss = (ours["normal"].ops ** 2).sum() + ours["reduce"].ops[:, 3].sum()
    ours_grad = torch.autograd.grad(ours_loss, [model.alpha_normal, model.alpha_reduce])
    torch.manual_seed(11)
    ref_normal = _ref_dirichlet_weights(model.alpha_normal)
    ref_reduce = _ref_dirichlet_weights(model.alpha_reduce)
    assert torch.allclose(ours["normal"].ops, ref_normal, rtol=0, atol=1e-7)
    assert torch.allclose(ours["reduce"].ops, ref_reduce, rtol=0, atol=1e-7)
    ref_grad = torch.autograd.grad((ref_normal ** 2).sum() + ref_reduce[:, 3].sum(),
                                   [model.alpha_normal, model.alpha_reduce])
    for a, b in zip(ours_grad, ref_grad):
        assert torch.allclose(a, b, atol=1e-6)
    reg = REGULARIZERS.get("drnas")(reg_type="kl", reg_scale=0.01)
    reg.setup(model)
    term, logs = reg.loss(_ctx(model))
    reference = _ref_kl_reg(model.alpha_normal, model.alpha_reduce, 0.01)
    assert float(term.detach()) == pytest.approx(float(reference.detach()), rel=1e-6)
    assert logs["kl"] == pytest.approx(float(kl_to_uniform(alphas(model)).detach()))
    grads = torch.autograd.grad(term, [model.alpha_normal, model.alpha_reduce])
    ref_grads = torch.autograd.grad(reference, [model.alpha_normal, model.alpha_reduce])
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-7)


def _ctx(model: nn.Module):
    from robustnas.search.regularizers import StepContext

    x, y = _batch()
    logits = model(x)
    return StepContext(model, x, y, logits, CE(logits, y), CE, "arch", 0, 0, 1)


def test_drnas_derives_from_the_dirichlet_mean_and_regularises_by_kl_or_weight_decay():
    model = _darts()
    RegularizerSet("drnas").setup(model)
    geno = model.genotype()
    mean = dirichlet_mean(model.alpha_normal.detach())
    assert [tuple(e) for e in geno.normal] == derive_cell(mean, model.primitives, 4)
    softmax_model = _darts()
    RegularizerSet("drnas", {"drnas": {"derive": "softmax"}}).setup(softmax_model)
    # the same operation on every edge (ELU+1 and softmax are both increasing in α)
    by_mean = model.arch_sampler.derivation_weights(model.alpha_normal, False)
    by_softmax = softmax_model.arch_sampler.derivation_weights(softmax_model.alpha_normal, False)
    assert torch.equal(by_softmax, torch.softmax(softmax_model.alpha_normal.detach(), -1))
    assert torch.equal(by_mean.argmax(-1), by_softmax.argmax(-1))
    # l2: no term (it is the α optimiser's weight decay); kl: a term on the α step only
    assert RegularizerSet("drnas").applies("arch", 0) is False
    kl = RegularizerSet("drnas", {"drnas": {"reg_type": "kl"}})
    assert kl.applies("arch", 0) and not kl.applies("weights", 0)
    with pytest.raises(UsageError, match="arch_weight_decay"):
        RegularizerSet("drnas", {"drnas": {"reg_scale": 0.1}})


def test_drnas_changes_the_weight_step_through_its_samples_only(tmp_path):
    model, clean = _nb201(), _nb201()
    arch_before = [p.detach().clone() for p in model.arch_parameters()]
    loss, logs = _step(model, "drnas")
    clean_loss, _ = _step(clean, "none")
    assert logs == {} and float(loss) != float(clean_loss)
    assert all(torch.equal(a, p) for a, p in zip(arch_before, model.arch_parameters()))


# -- composition and refusals ----------------------------------------------------------------
def test_sdarts_composes_with_advrush_on_both_steps():
    options = {"advrush": {"start_epoch": 0, "apply_to_weights": True}}
    regs = RegularizerSet("advrush,sdarts-rs", options)
    assert regs.describe() == "advrush:1,sdarts-rs:1"
    model = _darts()
    loss, logs = _step(model, "advrush,sdarts-rs", options=options)
    assert logs["regularizer_w/advrush/R"] > 0 and "regularizer_w/sdarts-rs/epsilon" in logs
    x, y = _batch(2)
    regs.setup(model)
    arch_opt = torch.optim.Adam(model.arch_parameters(), lr=3e-3)
    arch_logs = Architect(model, arch_opt, _sgd(model), regs, CE).step(x, y, x, y, 0.05, 0, 0, 1)
    assert arch_logs["regularizer/advrush/R"] > 0
    assert not any("sdarts" in k for k in arch_logs)


@pytest.mark.parametrize(("spec", "options", "message"), [
    ("sdarts-rs,sdarts-adv", None, "both perturb the architecture"),
    ("sdarts-adv,lipschitz", None, "not on the simplex"),
    ("lipschitz,drnas", None, "both install an architecture sampler"),
    ("sdarts-rs:2", None, "adds no loss term, so it takes no weight"),
    ("drnas:2", None, "adds no loss term"),
    ("sdarts-adv", {"sdarts-adv": {"steps": 0}}, "steps must be at least 1"),
    ("sdarts-rs", {"sdarts-rs": {"steps": 3}}, "unknown option"),
])
def test_combinations_that_cannot_work_are_refused_in_one_line(spec, options, message):
    with pytest.raises(UsageError, match=message) as info:
        RegularizerSet(spec, options)
    assert "\n" not in str(info.value)


def test_sdarts_refuses_a_single_path_pass():
    model = _darts()

    class SinglePath(ArchSampler):
        def forward(self, alpha, reduction):  # noqa: D102
            weights = CellWeights(ops=F.one_hot(alpha.argmax(-1), alpha.shape[-1]).float())
            weights.index = tuple(alpha.argmax(-1).tolist())  # as GDAS' sampler marks it
            return weights

    model.set_arch_sampler(SinglePath())
    with pytest.raises(UsageError, match="single-path"):
        _step(model, "sdarts-rs")
    assert not model.arch_sampler._forward_hooks


# -- the adversarial weight step -------------------------------------------------------------
def test_weight_objective_defaults_are_the_retraining_objectives():
    pgd = resolved_settings("pgd", {})
    assert (pgd.eps, pgd.steps, pgd.step_size) == (8 / 255, 7, 2 / 255)
    assert not pgd.clean_metrics and pgd.attack_bn == "eval" and pgd.random_start
    fgsm = resolved_settings("fgsm_rs", {"eps": "4/255"})
    assert (fgsm.steps, fgsm.step_size) == (1, pytest.approx(1.25 * 4 / 255))
    assert resolved_settings("trades", {}).steps == 10
    assert build_weight_objective("none") is None


@pytest.mark.parametrize(("name", "options", "order", "message"), [
    ("pgd", {}, 2, "needs order 1"),
    ("madry", {}, 1, "w_objective must be one of"),
    ("pgd", {"radius": 1}, 1, "unknown option"),
    ("pgd", {"eps": 8}, 1, "pixel scale"),
    ("pgd", {"steps": 0}, 1, "at least 1"),
    ("none", {"eps": 0.1}, 1, "neither w_objective nor alpha_objective"),
])
def test_weight_objective_refusals(name, options, order, message):
    with pytest.raises(UsageError, match=message):
        check_weight_objective(name, options, order)


@pytest.mark.parametrize("space", sorted(SUPERNETS))
def test_pgd_weight_objective_changes_the_weight_steps_loss_and_nothing_else(space):
    model, clean = SUPERNETS[space](), SUPERNETS[space]()
    arch_before = [p.detach().clone() for p in model.arch_parameters()]
    objective = build_weight_objective("pgd", {"steps": 3})
    loss, _ = _step(model, "none", objective=objective)
    clean_loss, _ = _step(clean, "none")
    assert float(loss) != float(clean_loss)
    # attacked in train mode (the mode of the loss) the batch is harder for the same weights
    harder, _ = _step(SUPERNETS[space](), "none", objective=build_weight_objective(
        "pgd", {"steps": 3, "attack_bn": "train"}))
    assert float(harder) > float(clean_loss)
    assert all(torch.equal(a, p) for a, p in zip(arch_before, model.arch_parameters()))
    assert model.training
    # the loss is the cross-entropy on the attack's examples (same generator state)
    probe = SUPERNETS[space]()
    x, y = _batch()
    torch.manual_seed(1)
    out = objective.compute(probe, x, y)
    assert float(out.loss.detach()) == pytest.approx(float(loss), abs=1e-6)
    assert (out.x_adv - x).abs().max() <= 8 / 255 + 1e-6


def test_weight_objective_composes_with_sdarts_and_trades_logs_its_kl():
    model = _darts()
    loss, logs = _step(model, "sdarts-rs", objective=build_weight_objective(
        "trades", {"steps": 2}))
    assert logs["w_objective/trades_kl"] >= 0 and "regularizer_w/sdarts-rs/epsilon" in logs


def test_switched_off_the_weight_step_is_bit_identical_to_before():
    """The weight step of the previous commit (f4c172a^), inlined: with no regulariser
    that perturbs and no objective the new one computes exactly the same."""

    def previous(model, optimizer, x, y, criterion, grad_clip, regularizers):
        logits = model(x)
        loss = criterion(logits, y)
        total = loss
        if regularizers.applies("weights", 0):
            from robustnas.search.regularizers import StepContext

            ctx = StepContext(model, x, y, logits, loss, criterion, "weights", 0, 0, 10)
            reg, _ = regularizers.loss(ctx)
            total = loss + reg
        weights = model.weights()
        for p, g in zip(weights, torch.autograd.grad(total, weights, allow_unused=True)):
            p.grad = g
        nn.utils.clip_grad_norm_(weights, grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    options = {"jacobian": {"on": "weights"}}
    for spec in ("none", "jacobian"):
        model, old = _darts(), _darts()
        x, y = _batch()
        new_loss, _ = _step(model, spec, options=options if spec != "none" else None)
        torch.manual_seed(1)
        old_loss = previous(old, _sgd(old), x, y, CE, 5.0,
                            RegularizerSet(spec, options if spec != "none" else None))
        assert torch.equal(new_loss, old_loss)
        assert _max_diff(_state(model), _state(old)) == 0


# -- searches end to end: DARTS and NB201, resume -------------------------------------------
def _config(out: Path, space: str = "darts", **changes):
    from robustnas.search import SearchConfig

    settings = dict(dataset="synthetic", dataset_options={"n_train": 96, "n_test": 32},
                    C=4, layers=3, batch_size=16, epochs=2, warmup_epochs=1, device="cpu",
                    seed=3, out=str(out), draw_every=0, threads=1, space=space)
    settings.update(changes)
    return SearchConfig(**settings)


def _search(config, callbacks=(), resume: bool = False):
    from robustnas.search import run_search

    if resume:
        return run_search(overrides={"out": config.out}, resume=True, show_progress=False,
                          callbacks=callbacks)
    return run_search(config, show_progress=False, callbacks=callbacks)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoint.pt")["model"]["state_dict"]


def _stop_and_resume(tmp_path: Path, config_for) -> None:
    """An uninterrupted run and one stopped at epoch 2, step 1 and resumed: bit-identical."""
    from robustnas.search.searcher import SearchInterrupted

    reference, run = tmp_path / "ref", tmp_path / "run"
    _search(config_for(reference))

    def stop(task) -> None:
        if (task.epoch, task.step) == (1, 1):
            task.request_stop("test")

    with pytest.raises(SearchInterrupted):
        _search(config_for(run), [on_step(stop)])
    _search(config_for(run), resume=True)
    a, b = _weights(reference), _weights(run)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("space", [pytest.param("darts", marks=pytest.mark.slow), "nb201"])
def test_tiny_searches_with_sdarts_and_drnas(tmp_path, space):
    for spec in ("sdarts-adv", "drnas,sdarts-rs"):
        options = {"sdarts-adv": {"steps": 2}} if spec == "sdarts-adv" else {}
        result = _search(_config(tmp_path / spec, space, regularizer=spec,
                                 regularizer_options=options, max_steps_per_epoch=2))
        assert (tmp_path / spec / "genotype.json").is_file(), result


def test_sdarts_adv_with_drnas_resumes_bit_identical(tmp_path):
    def config_for(out: Path):
        return _config(out, "nb201", regularizer="drnas,sdarts-adv",
                       regularizer_options={"sdarts-adv": {"steps": 2}})

    _stop_and_resume(tmp_path, config_for)


def test_pgd_weight_objective_resumes_bit_identical(tmp_path, monkeypatch):
    """The attack's random starts come from the global generator, which the checkpoint
    saves and restores at step boundaries. The search loop is given the objective the way
    ``w_objective`` gives it (``weight_step(..., objective=...)``)."""
    from robustnas.search import searcher

    objective = build_weight_objective("pgd", {"steps": 2})
    real = searcher.weight_step
    calls = []

    def wired(*args, **kwargs):
        kwargs["objective"] = kwargs.get("objective") or objective
        calls.append(kwargs["objective"])
        return real(*args, **kwargs)

    monkeypatch.setattr(searcher, "weight_step", wired)
    _stop_and_resume(tmp_path, lambda out: _config(out, "nb201", regularizer="advrush",
                                                   regularizer_options={
                                                       "advrush": {"start_epoch": 1}}))
    assert calls and all(c is objective for c in calls)


# -- the search settings ---------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "message"), [
    ({"w_objective": "pgd", "order": 2}, "w_objective pgd needs order 1"),
    ({"w_objective": "madry"}, "w_objective"),
    ({"w_objective": "pgd", "w_objective_options": {"eps": 8}}, "pixel scale"),
    ({"w_objective_options": {"eps": 0.1}}, "neither w_objective nor alpha_objective"),
])
def test_search_config_refuses_weight_objectives_that_cannot_work(tmp_path, changes, message):
    with pytest.raises(UsageError, match=message) as info:
        _config(tmp_path, **changes).validate()
    assert "\n" not in str(info.value)


def test_search_config_takes_a_weight_objective(tmp_path):
    config = _config(tmp_path, w_objective="trades", w_objective_options={"steps": 2})
    config.validate()
    assert _config(tmp_path).w_objective == "none"


def test_the_w_objective_setting_reaches_the_weight_step(tmp_path):
    clean = _search(_config(tmp_path / "none", "nb201", epochs=1, warmup_epochs=1,
                            max_steps_per_epoch=1))
    adversarial = _search(_config(tmp_path / "pgd", "nb201", epochs=1, warmup_epochs=1,
                                  max_steps_per_epoch=1, w_objective="pgd",
                                  w_objective_options={"steps": 2}))
    assert clean.history[-1]["train_loss"] != adversarial.history[-1]["train_loss"]
