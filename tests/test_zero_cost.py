"""Zero-cost proxies (robustnas.tables.zero_cost): every proxy on tiny NB201 and DARTS
networks, five against minimal ports of the reference implementations, the random-forest
predictor and the ``correlate --proxies`` / ``--predictor`` command lines.

The ports follow zero-cost-nas / NASLib's ``measures`` (read, not copied): snip through
weight masks c = 1 and |∂L/∂c|, grad_norm as the sum of per-layer gradient norms, synflow
by making the state dict absolute in float64 and back-propagating Σ f(1), nwot through ReLU
forward hooks accumulating K + K₂ and slogdet, jacob_cov through ``np.corrcoef`` and
``np.linalg.eig``, fisher through an identity after each layer whose backward hook
accumulates ½ mean_n (Σ_hw a·g)², epe_nas through per-label ``np.vstack`` and
``np.corrcoef``; grasp is checked against H·g by forward-over-reverse AD (torch.func)
instead. Max relative differences on the tiny NB201 and DARTS networks (seed 0):
grad_norm 0, snip 0, synflow 0, nwot 0, fisher 0, jacob_cov 2.2e-16 (eig vs eigvalsh),
epe_nas 1.7e-16, grasp 4.5e-7 (float32, two-pass vs jvp).
"""

from __future__ import annotations

import copy
import json
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustnas.space.spaces import get_space
from robustnas.tables.zero_cost import PROXIES, compute, proxy_names

ALL = PROXIES.names()


def tiny(space: str, seed: int = 0) -> nn.Module:
    """A tiny freshly initialised network of ``space`` (4 classes, 3×16×16 images)."""
    sp = get_space(space)
    genotype = sp.draw(random.Random(seed), {})
    torch.manual_seed(seed)
    return sp.network(genotype, C=4, layers=3, num_classes=4,
                      in_channels=3, mean=None, std=None)


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(8, 3, 16, 16, generator=gen), torch.arange(8) % 4


def run(name: str, space: str, seed: int = 0) -> float:
    x, y = batch(seed)
    net = tiny(space, seed)
    torch.manual_seed(seed)
    return compute(name, net, x, y, 4, hessian_iters=3, seed=seed)


def test_registry_lists_the_suite():
    expected = {"grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow", "nwot", "zen",
                "plain", "l2_norm", "epe_nas", "flops", "params", "macs",
                "jacobian_frobenius", "hessian_top_eigenvalue", "lipschitz_log10", "croze"}
    assert expected <= set(ALL)
    assert proxy_names("all") == ALL
    assert proxy_names("snip, synflow") == ["snip", "synflow"]
    assert proxy_names(None)[:1] == ["jacobian_frobenius"]
    with pytest.raises(Exception, match="unknown proxy 'nope'"):
        proxy_names("snip,nope")
    for name in ALL:
        entry = PROXIES.get(name)
        assert entry.paper and entry.measures


@pytest.mark.parametrize("space", ["nb201", "darts"])
@pytest.mark.parametrize("name", ALL)
def test_every_proxy_is_finite_and_deterministic(space, name):
    a = run(name, space)
    assert math.isfinite(a), (name, space, a)
    assert run(name, space) == a


# -- minimal ports of the references ---------------------------------------------------------


def _layers(net):
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def port_grad_norm(net, x, y):
    net.train()
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    return sum(float(m.weight.grad.norm()) for m in _layers(net) if m.weight.grad is not None)


def port_snip(net, x, y):
    net.train()
    masks = {}
    for m in _layers(net):  # weight masks c = 1, forward with c ⊙ W
        masks[m] = torch.ones_like(m.weight, requires_grad=True)
        m.weight.requires_grad_(False)
        w = m.weight

        def fwd(inp, m=m, w=w):
            if isinstance(m, nn.Conv2d):
                return F.conv2d(inp, w * masks[m], m.bias, m.stride, m.padding, m.dilation,
                                m.groups)
            return F.linear(inp, w * masks[m], m.bias)

        m.forward = fwd
    F.cross_entropy(net(x), y).backward()
    return sum(float(c.grad.abs().sum()) for c in masks.values() if c.grad is not None)


def port_synflow(net, x, y):
    net = net.double()
    for tensor in net.state_dict().values():
        tensor.abs_()
    net.eval()  # our deviation: batch norm stays, in eval mode (see synflow's docstring)
    net.zero_grad()
    net(torch.ones([1] + list(x[0].shape)).double()).sum().backward()
    return sum(float((m.weight * m.weight.grad).abs().sum().detach()) for m in _layers(net)
               if m.weight.grad is not None)


def port_nwot(net, x, y):
    net.train()
    net.K = np.zeros((len(x), len(x)))

    def hook(module, inp, out):
        v = inp[0].view(inp[0].size(0), -1)
        c = (v > 0).float()
        net.K = net.K + (c @ c.t()).numpy() + ((1.0 - c) @ (1.0 - c.t())).numpy()

    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(x)
    return float(np.linalg.slogdet(net.K)[1])


def port_jacob_cov(net, x, y):
    net.train()
    x = x.clone().requires_grad_(True)
    out = net(x)
    out.backward(torch.ones_like(out))
    jac = x.grad.detach().reshape(len(x), -1).numpy()
    corr = np.corrcoef(jac)
    v, _ = np.linalg.eig(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)).real)


def port_fisher(net, x, y):
    net.train()
    found = []
    for m in _layers(net):  # an identity after each layer, its backward hook reads dL/da
        m.dummy = nn.Identity()
        m.fisher = None
        orig = m.forward

        def fwd(inp, m=m, orig=orig):
            m.act = m.dummy(orig(inp))
            return m.act

        def hook(module, grad_in, grad_out, m=m):
            act, grad = m.act.detach(), grad_out[0].detach()
            g = (act * grad).sum(list(range(2, act.dim()))) if act.dim() > 2 else act * grad
            d = g.pow(2).mean(0).mul(0.5)
            m.fisher = d if m.fisher is None else m.fisher + d

        m.forward = fwd
        m.dummy.register_full_backward_hook(hook)
        found.append(m)
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    return sum(float(m.fisher.sum()) for m in found if m.fisher is not None)


def port_epe_nas(net, x, y):
    net.train()
    x = x.clone().requires_grad_(True)
    out = net(x)
    out.backward(torch.ones_like(out))
    jac = x.grad.detach().reshape(len(x), -1).numpy()
    per_class = {}
    for i, label in enumerate(y.tolist()):
        per_class[label] = (np.vstack((per_class[label], jac[i])) if label in per_class
                            else jac[i])
    scores = {}
    for c, rows in per_class.items():
        corrs = np.array(np.corrcoef(rows))
        scores[c] = np.sum(np.log(abs(corrs) + 1e-5))
    total = sum(abs(scores[a] - scores[b]) for a in scores for b in scores)
    return float(total / len(scores))


def port_grasp(net, x, y):
    """Not the references' two-pass code but H·g by forward-over-reverse AD (torch.func),
    an independent check of the same −Σ W ⊙ Hg."""
    from torch.func import functional_call, grad, jvp

    net.train()
    names = [f"{n}.weight" for n, m in net.named_modules() if isinstance(m, (nn.Conv2d,
                                                                              nn.Linear))]
    w0 = {n: p.detach() for n, p in net.named_parameters() if n in names}

    buffers = {n: b.detach() for n, b in net.named_buffers()}

    def loss(w):
        # Fresh buffers per call: train-mode batch norm updates its running statistics
        # in place, which a torch.func transform refuses on captured tensors.
        state = {**{n: b.clone() for n, b in buffers.items()}, **w}
        return F.cross_entropy(functional_call(net, state, (x,), strict=False), y)

    g = grad(loss)(w0)
    _, hg = jvp(grad(loss), (w0,), (g,))
    return float(sum((-w0[n] * hg[n]).sum().detach() for n in w0))


PORTS = {"grad_norm": (port_grad_norm, 1e-6), "snip": (port_snip, 1e-5),
         "synflow": (port_synflow, 1e-9), "nwot": (port_nwot, 1e-9),
         "jacob_cov": (port_jacob_cov, 1e-5), "fisher": (port_fisher, 1e-5),
         "epe_nas": (port_epe_nas, 1e-9), "grasp": (port_grasp, 1e-4)}


@pytest.mark.parametrize("space", ["nb201", "darts"])
@pytest.mark.parametrize("name", sorted(PORTS))
def test_proxy_matches_a_minimal_port_of_the_reference(name, space):
    port, rel = PORTS[name]
    x, y = batch()
    ours = run(name, space)
    ref = port(copy.deepcopy(tiny(space)), x, y)
    assert ours == pytest.approx(ref, rel=rel, abs=1e-9), (ours, ref)


# -- the random-forest predictor -------------------------------------------------------------


def make_bench(root, n: int = 40, seed: int = 0):
    """A robustness-dataset table of ``n`` NB201 cells with made-up accuracies."""
    from robustnas.space.nb201.sampler import cell_from_code

    rng = np.random.default_rng(seed)
    codes = [int(c) for c in rng.choice(15625, size=n, replace=False)]
    meta = {"ids": {str(c): {"nb201-string": cell_from_code(c).to_string(), "isomorph": str(c)}
                    for c in codes}, "epsilons": {"pgd@Linf": [1.0, 8.0]}}
    clean = {str(c): float(v) for c, v in zip(codes, rng.uniform(0.5, 0.95, n))}
    pgd = {str(c): [clean[str(c)] * 0.5, float(rng.uniform(0, 0.2))] for c in codes}
    (root / "cifar10").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps(meta))
    (root / "cifar10" / "clean_accuracy.json").write_text(
        json.dumps({"cifar10": {"clean": {"accuracy": clean}}}))
    (root / "cifar10" / "pgd@Linf_accuracy.json").write_text(
        json.dumps({"cifar10": {"pgd@Linf": {"accuracy": pgd}}}))
    return {cell_from_code(c).to_string(): clean[str(c)] for c in codes}


def test_forest_predicts_a_proxy_that_is_the_target(tmp_path):
    from robustnas.tables import RobustnessBench
    from robustnas.tables.predictor import format_forest, predict_robustness

    clean = make_bench(tmp_path, n=60)
    rng = np.random.default_rng(3)
    records = {arch: {"arch": arch, "same": acc, "noise": float(rng.normal()),
                      "bad": -math.inf if i == 0 else 1.0}
               for i, (arch, acc) in enumerate(clean.items())}
    bench = RobustnessBench(tmp_path)
    scores = predict_robustness(records, bench, "cifar10", ["same", "noise"], seeds=range(5))
    by = {s.column: s for s in scores}
    assert set(by) == {"clean", "pgd@Linf@1", "pgd@Linf@8"}
    assert by["clean"].n == 60 and len(by["clean"].r2) == 5
    assert by["clean"].r2_mean > 0.95  # the forest recovers the identity: 0.998 ± 0.001
    assert by["clean"].importances["same"] > 0.8 > by["clean"].importances["noise"]
    assert by["pgd@Linf@1"].r2_mean > 0.9  # a multiple of clean
    assert by["pgd@Linf@8"].r2_mean < 0.5  # independent noise: -0.19 ± 0.25
    assert by["clean"].r2_sd >= 0 and "R² mean ± sd" in format_forest(scores)
    # A non-finite feature drops the cell, not the column.
    assert predict_robustness(records, bench, "cifar10", ["same", "bad"])[0].n == 59
    assert predict_robustness(records, bench, "cifar10", ["same"], seeds=range(5)) == \
        predict_robustness(records, bench, "cifar10", ["same"], seeds=range(5))  # seeded


def test_forest_refuses_without_sklearn_or_cells(tmp_path, monkeypatch):
    from robustnas.errors import UsageError
    from robustnas.tables import RobustnessBench
    from robustnas.tables.predictor import predict_robustness

    clean = make_bench(tmp_path, n=8)
    records = {arch: {"arch": arch, "same": acc} for arch, acc in clean.items()}
    bench = RobustnessBench(tmp_path)
    with pytest.raises(UsageError, match="at least 10"):
        predict_robustness(records, bench, "cifar10", ["same"])
    monkeypatch.setitem(__import__("sys").modules, "sklearn", None)
    with pytest.raises(UsageError, match=r"pip install 'robustnas\[predictor\]'"):
        predict_robustness(records, bench, "cifar10", ["same"])


# -- command lines ---------------------------------------------------------------------------


def test_cli_correlate_proxies_and_predictor(tmp_path, capsys):
    from robustnas.cli import main

    make_bench(tmp_path / "bench", n=12)
    out = tmp_path / "out"
    args = ["correlate", "--bench-root", str(tmp_path / "bench"), "--out", str(out),
            "--proxy-n", "8", "--channels", "2", "--cells-per-stage", "1", "--top-k", "0"]
    assert main([*args, "--proxies", "snip,nwot,synflow"]) == 0
    text = capsys.readouterr().out
    assert "snip τ / ρ" in text and "nwot τ / ρ" in text and "synflow τ / ρ" in text
    # More proxies later: only the missing ones are measured, appended to the same file.
    assert main([*args, "--proxies", "snip,params", "--predictor", "rf"]) == 0
    text = capsys.readouterr().out
    assert "random forest (100 trees, 80/20 split, R² over 5 seeds)" in text
    assert "imp snip | imp params" in text
    saved = json.loads((out / "predictor.json").read_text())
    assert saved["proxies"] == ["snip", "params"] and len(saved["results"][0]["r2"]) == 5
    lines = (out / "proxies.jsonl").read_text().splitlines()
    assert len(lines) == 24 and "params" in json.loads(lines[-1])
    assert "snip" not in json.loads(lines[-1])
    assert main([*args, "--no-compute", "--proxies", "all"]) == 0
    assert "params τ / ρ" in capsys.readouterr().out
    assert main([*args, "--proxies", "nope"]) == 2
    assert "unknown proxy 'nope'" in capsys.readouterr().err


def test_croze_surrogate_moves_each_weight_by_twice_its_norm():
    """The authors' adversarial weight step: θ* − θ = 2·‖θ‖·Δ/‖Δ‖ per weight tensor (≥ 2-D),
    biases and batch norm untouched; FGSM stays in [0, 1] and moves each pixel ≤ 0.01."""
    from robustnas.tables.zero_cost.croze import fgsm_step, linearise, perturb_weights

    net = linearise(tiny("nb201"))
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    x, y = batch()
    perturb_weights(net, x.double(), y)
    moved = 0
    for name, p in net.named_parameters():
        step = (p.detach() - before[name]).norm()
        if p.dim() > 1 and float(step) > 0:
            assert float(step / before[name].norm()) == pytest.approx(2.0, rel=1e-9)
            moved += 1
        elif p.dim() <= 1:
            assert float(step) == 0.0
    assert moved > 0
    x_adv = fgsm_step(net, x.double(), y)
    assert float((x_adv - x.double()).abs().max()) <= 0.01 + 1e-12
    assert 0 <= float(x_adv.min()) and float(x_adv.max()) <= 1
