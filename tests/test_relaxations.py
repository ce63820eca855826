"""Search relaxations (robustnas.space.relaxations): PC-DARTS' partial channels and edge
normalisation, GDAS' Gumbel hard sampling, on the DARTS and NAS-Bench-201 supernets; the
search with them (genotype, checkpoint payload, in-process resume), what is refused, and
checks against minimal ports of the authors' code on identical tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from robustnas.config import resolve_config
from robustnas.engine import Callback, on_step
from robustnas.errors import UsageError
from robustnas.io import load_checkpoint
from robustnas.search import SearchConfig, run_search
from robustnas.search.searcher import SearchInterrupted
from robustnas.space.arch_sampler import ArchSampler, CellWeights
from robustnas.space.darts.supernet import MixedOp, SearchCell, SuperNet
from robustnas.space.models import model_from_payload, model_payload
from robustnas.space.nb201.supernet import NB201MixedOp, NB201SuperNet
from robustnas.space.partial_channels import PartialChannels, channel_shuffle
from robustnas.space.relaxations import RELAXATIONS, make_relaxation
from robustnas.space.relaxations.gdas import GumbelSampler, annealed_tau, gumbel_hard
from robustnas.space.relaxations.pc_darts import EdgeNormalizedSampler

MIXED_OPS = (MixedOp, NB201MixedOp)


def _darts(relaxation: str, **options) -> SuperNet:
    torch.manual_seed(0)
    return SuperNet(C=4, num_classes=10, layers=3, in_channels=1, relaxation=relaxation,
                    relaxation_options=options or None)


def _nb201(relaxation: str, **options) -> NB201SuperNet:
    torch.manual_seed(0)
    return NB201SuperNet(C=4, N=1, num_classes=10, in_channels=1, relaxation=relaxation,
                         relaxation_options=options or None)


SUPERNETS = {"darts": _darts, "nb201": _nb201}


def _mixed_ops(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, MIXED_OPS)]


def test_the_registry_finds_every_relaxation():
    assert RELAXATIONS.patterns == ("robustnas.space.relaxations",)
    assert {"darts", "pc-darts", "gdas"} <= set(RELAXATIONS.names())
    assert make_relaxation(None).name == "darts"
    assert make_relaxation("pc-darts", {"k": 2}).partial_channels == 2


def test_relaxations_are_found_without_import_lines():
    """In a fresh process the registry finds a relaxation's module by discovery alone."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from robustnas.space.relaxations.base import RELAXATIONS\n"
            "assert 'robustnas.space.relaxations.gdas' not in sys.modules\n"
            "print(RELAXATIONS.get('gdas').name)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "gdas"


@pytest.mark.parametrize("space", sorted(SUPERNETS))
def test_darts_relaxation_is_the_plain_supernet(space):
    """The default builds exactly what the supernet built before: the same parameters from
    the same random numbers, DARTS' softmax sampler, no partial channels."""
    model = SUPERNETS[space]("darts")
    assert type(model.arch_sampler) is ArchSampler
    assert not any(isinstance(m, PartialChannels) for m in model.modules())
    assert model.config["relaxation"] == "darts" and model.config["relaxation_options"] == {}
    torch.manual_seed(0)
    plain = SuperNet(C=4, num_classes=10, layers=3, in_channels=1) if space == "darts" else \
        NB201SuperNet(C=4, N=1, num_classes=10, in_channels=1)
    for (name, a), (_, b) in zip(model.state_dict().items(), plain.state_dict().items()):
        assert torch.equal(a, b), name


# -- PC-DARTS --------------------------------------------------------------------------------
@pytest.mark.parametrize("space", sorted(SUPERNETS))
def test_pc_darts_sends_c_over_k_channels_through_the_operations(space):
    model = SUPERNETS[space]("pc-darts")
    seen: list[tuple[int, PartialChannels]] = []  # (channels an op saw, its edge)
    for edge in (m for m in model.modules() if isinstance(m, PartialChannels)):
        for op in edge.ops:
            op.register_forward_pre_hook(
                lambda mod, args, e=edge: seen.append((args[0].shape[1], e)))
    x = torch.rand(3, 1, 8, 8)
    assert model(x).shape == (3, 10)
    assert seen, "no partial-channel edge ran"
    cells = [c for c in model.cells if hasattr(c, "partial")]
    widths = {id(e): c.C for c in cells for e in c.edges}
    assert all(channels == widths[id(edge)] // 4 for channels, edge in seen)
    assert all(c.partial == 4 for c in cells)


def test_pc_darts_reduction_edges_pool_the_bypass():
    model = _darts("pc-darts")
    reduce_cell = next(c for c in model.cells if c.reduction)
    strided = [e for e in reduce_cell.edges if e.stride == 2]
    assert strided and all(isinstance(e.bypass, nn.MaxPool2d) for e in strided)
    normal = next(c for c in model.cells if not c.reduction)
    assert all(isinstance(e.bypass, nn.Identity) for e in normal.edges)


@pytest.mark.parametrize("space", sorted(SUPERNETS))
def test_pc_darts_beta_is_a_softmax_over_each_node_and_trains_with_alpha(space):
    model = SUPERNETS[space]("pc-darts")
    sampler = model.arch_sampler
    assert isinstance(sampler, EdgeNormalizedSampler)
    betas = [p for n, p in model.named_arch_parameters() if "beta_" in n]
    assert betas and not {id(p) for p in betas} & {id(p) for p in model.weights()}
    with torch.no_grad():
        for beta in betas:
            beta.copy_(torch.randn_like(beta))
    for reduction in range(len(sampler.cell_types)):
        weights = sampler.edge_weights(bool(reduction))
        raw = sampler.beta(bool(reduction))
        for a, b in sampler.node_ranges:
            assert torch.allclose(weights[a:b].sum(), torch.tensor(1.0))
            assert torch.equal(weights[a:b], torch.softmax(raw[a:b], dim=0))
    model(torch.rand(3, 1, 8, 8)).sum().backward()
    assert all(b.grad is not None and b.grad.abs().sum() > 0 for b in betas)


def test_pc_darts_derivation_ranks_edges_by_alpha_times_beta():
    """Node 3 (inputs 0, 1, 2; edges 2-4): α favours input 0 a little, β favours inputs 1 and
    2 strongly; DARTS' rule would keep input 0, PC-DARTS' α·β keeps 1 and 2."""
    model = _darts("pc-darts")
    ops = model.primitives
    with torch.no_grad():
        model.alpha_normal.zero_()
        model.alpha_normal[2, ops.index("sep_conv_3x3")] = 2.0
        model.alpha_normal[3, ops.index("dil_conv_3x3")] = 1.5
        model.alpha_normal[4, ops.index("max_pool_3x3")] = 1.5
        model.arch_sampler.beta_normal.zero_()
        model.arch_sampler.beta_normal[2] = -3.0
    node = model.genotype().normal[2:4]
    assert sorted(j for _, j in node) == [1, 2]
    assert dict((j, op) for op, j in node) == {1: "dil_conv_3x3", 2: "max_pool_3x3"}
    weights = model.arch_sampler.derivation_weights(model.alpha_normal, False)
    beta = model.arch_sampler.edge_weights(False)
    assert torch.equal(weights, (torch.softmax(model.alpha_normal, -1) * beta[:, None]).detach())
    plain = _darts("darts")
    plain.alpha_normal.data.copy_(model.alpha_normal.data)
    assert 0 in [j for _, j in plain.genotype().normal[2:4]]  # DARTS' rule differs here


def _authors_channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS' channel_shuffle (model_search.py), ported minimally."""
    batchsize, num_channels, height, width = x.data.size()
    x = x.view(batchsize, groups, num_channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


def _authors_mixed_op(ops: nn.ModuleList, mp: nn.Module, k: int, x: torch.Tensor,
                      weights: torch.Tensor) -> torch.Tensor:
    """PC-DARTS' MixedOp.forward on our operations (its ``_ops``)."""
    dim_2 = x.shape[1]
    xtemp = x[:, :dim_2 // k, :, :]
    xtemp2 = x[:, dim_2 // k:, :, :]
    temp1 = sum(w * op(xtemp) for w, op in zip(weights, ops))
    if temp1.shape[2] == x.shape[2]:
        ans = torch.cat([temp1, xtemp2], dim=1)
    else:
        ans = torch.cat([temp1, mp(xtemp2)], dim=1)
    return _authors_channel_shuffle(ans, k)


def _authors_betas(betas: torch.Tensor, steps: int) -> torch.Tensor:
    """PC-DARTS' Network.forward: β softmax-normalised per node (their loop)."""
    n, start = 3, 2
    weights2 = torch.softmax(betas[0:2], dim=-1)
    for _ in range(steps - 1):
        end = start + n
        weights2 = torch.cat([weights2, torch.softmax(betas[start:end], dim=-1)], dim=0)
        start, n = end, n + 1
    return weights2


def _authors_cell(cell: SearchCell, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                  weights2: torch.Tensor) -> torch.Tensor:
    """PC-DARTS' Cell.forward on our cell's modules (2x2 max pool as theirs)."""
    mp = nn.MaxPool2d(2, 2)
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    offset = 0
    for _ in range(cell.steps):
        s = sum(weights2[offset + j] * _authors_mixed_op(cell.edges[offset + j].ops, mp, 4, h,
                                                         weights[offset + j])
                for j, h in enumerate(states))
        offset += len(states)
        states.append(s)
    return torch.cat(states[-cell.multiplier:], dim=1)


def _authors_parse(weights, weights2, steps, primitives):
    """PC-DARTS' genotype _parse (edges ranked by softmax(α)·softmax(β)), ported minimally."""
    gene, n, start = [], 2, 0
    none = primitives.index("none")
    for i in range(steps):
        end = start + n
        W = weights[start:end].copy()
        W2 = weights2[start:end].copy()
        for j in range(n):
            W[j, :] = W[j, :] * W2[j]
        edges = sorted(range(i + 2), key=lambda x: -max(W[x][k] for k in range(len(W[x]))
                                                          if k != none))[:2]
        for j in edges:
            k_best = None
            for k in range(len(W[j])):
                if k != none and (k_best is None or W[j][k] > W[j][k_best]):
                    k_best = k
            gene.append((primitives[k_best], j))
        start = end
        n += 1
    return gene


def test_pc_darts_matches_the_authors_code_on_identical_inputs():
    """Minimal ports of PC-DARTS' channel_shuffle, MixedOp.forward, Cell.forward (with their
    β normalisation) and genotype parsing, run on our modules and tensors.

    Measured max |difference|: 0.0 for the shuffle, for β, and for the reduction and normal
    cells on our reference path (the same Python sum); 3.3e-7 for the cells on our default
    fast path (in-place accumulation, ``none`` skipped); the derived genotype is equal.
    """
    torch.manual_seed(1)
    model = _darts("pc-darts")
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(_authors_channel_shuffle(x, 4), channel_shuffle(x, 4))
    with torch.no_grad():
        for p in model.arch_parameters():
            p.copy_(torch.randn_like(p))
    sampler = model.arch_sampler
    for reduction in (False, True):
        beta = sampler.beta(reduction)
        assert torch.equal(sampler.edge_weights(reduction), _authors_betas(beta, 4))
    inputs: list[tuple[SearchCell, torch.Tensor, torch.Tensor, CellWeights]] = []
    hooks = [cell.register_forward_pre_hook(lambda c, args: inputs.append((c, *args)))
             for cell in model.cells]
    with torch.no_grad():
        model(torch.rand(2, 1, 8, 8))
    for hook in hooks:
        hook.remove()
    worst = {"fast": 0.0, "reference": 0.0}
    for cell, s0, s1, weights in inputs:
        with torch.no_grad():
            theirs = _authors_cell(cell, s0, s1, weights.ops, weights.edges)
            ours = cell(s0, s1, weights)
            for module in cell.modules():
                if isinstance(module, (MixedOp, SearchCell)):
                    module.reference = True
            reference = cell(s0, s1, weights)
        worst["fast"] = max(worst["fast"], float((ours - theirs).abs().max()))
        worst["reference"] = max(worst["reference"], float((reference - theirs).abs().max()))
    assert worst["reference"] == 0.0
    assert worst["fast"] < 1e-5
    probs = model.alpha_softmax()
    their_normal = _authors_parse(probs["normal"].numpy(), sampler.edge_weights(False).detach()
                                  .numpy(), 4, list(model.primitives))
    assert list(model.genotype().normal) == their_normal


# -- GDAS ------------------------------------------------------------------------------------
def test_gdas_temperature_schedule():
    assert annealed_tau(0, 50, 10.0, 0.1) == 10.0
    assert annealed_tau(49, 50, 10.0, 0.1) == pytest.approx(0.1)
    assert annealed_tau(5, 11, 10.0, 0.1) == pytest.approx(5.05)
    assert annealed_tau(0, 1, 10.0, 0.1) == 10.0
    sampler = GumbelSampler(10.0, 0.1)
    sampler.set_epoch(10, 11)
    assert sampler.tau == pytest.approx(0.1)


@pytest.mark.parametrize("space", sorted(SUPERNETS))
def test_gdas_runs_exactly_one_operation_per_edge(space):
    model = SUPERNETS[space]("gdas")
    calls: dict[int, int] = {}
    for mixed in _mixed_ops(model):
        for op in mixed.ops:
            op.register_forward_hook(lambda mod, a, o, m=mixed: calls.__setitem__(
                id(m), calls.get(id(m), 0) + 1))
    model.train()
    model(torch.rand(3, 1, 8, 8)).sum().backward()
    assert len(calls) == len(_mixed_ops(model)) and set(calls.values()) == {1}
    alphas = [p for n, p in model.named_arch_parameters() if n.startswith("alpha")]
    assert all(a.grad is not None and torch.isfinite(a.grad).all() for a in alphas)
    assert sum(float(a.grad.abs().sum()) for a in alphas) > 0  # the soft gradient reaches α
    calls.clear()
    model.eval()
    with torch.no_grad():
        weights = model.mixing_weights()
        model(torch.rand(3, 1, 8, 8))
    assert set(calls.values()) == {1}
    for kind, alpha in zip(weights, alphas):  # eval mode: the argmax of α, no noise
        assert weights[kind].index == tuple(alpha.argmax(-1).tolist())


def _authors_gumbel(xins: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GDAS' get_gumbel_prob (search_model_gdas_nasnet.py), ported minimally."""
    while True:
        gumbels = -torch.empty_like(xins).exponential_().log()
        logits = (xins.log_softmax(dim=1) + gumbels) / tau
        probs = nn.functional.softmax(logits, dim=1)
        index = probs.max(-1, keepdim=True)[1]
        one_h = torch.zeros_like(logits).scatter_(-1, index, 1.0)
        hardwts = one_h - probs.detach() + probs
        if (torch.isinf(gumbels).any()) or (torch.isinf(probs).any()) or (
                torch.isnan(probs).any()):
            continue
        break
    return hardwts, index


def _authors_cell_gdas(cell: SearchCell, s0: torch.Tensor, s1: torch.Tensor,
                       weightss: torch.Tensor, indexs: torch.Tensor) -> torch.Tensor:
    """GDAS' NASNetSearchCell.forward_gdas with MixedOp.forward_gdas, on our cell's modules."""
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    offset = 0
    for _ in range(cell.steps):
        clist = []
        for j, h in enumerate(states):
            weights, index = weightss[offset + j], indexs[offset + j].item()
            clist.append(cell.edges[offset + j].ops[index](h) * weights[index])
        offset += len(states)
        states.append(sum(clist))
    return torch.cat(states[-cell.multiplier:], dim=1)


def test_gdas_matches_the_authors_code_on_identical_inputs():
    """Minimal ports of GDAS' Gumbel hard sampling and single-path cell forward, on the same
    α, generator state and modules. Measured max |difference|: 0.0 for the weights, the
    drawn operations, the cell output and α's gradient through it."""
    torch.manual_seed(2)
    model = _darts("gdas")
    alpha = model.alpha_normal
    with torch.no_grad():
        alpha.copy_(torch.randn_like(alpha))
    torch.manual_seed(7)
    theirs, index = _authors_gumbel(alpha, 3.0)
    torch.manual_seed(7)
    ours, our_index = gumbel_hard(alpha, 3.0)
    assert torch.equal(ours, theirs) and torch.equal(our_index, index)
    cell = next(c for c in model.cells if not c.reduction)
    s0, s1 = torch.rand(2, 12, 8, 8), torch.rand(2, 12, 8, 8)
    out_theirs = _authors_cell_gdas(cell, s0, s1, theirs, index)
    (grad_theirs,) = torch.autograd.grad(out_theirs.square().sum(), alpha)
    weights = CellWeights(ops=ours, index=tuple(our_index.flatten().tolist()))
    out_ours = cell(s0, s1, weights)
    (grad_ours,) = torch.autograd.grad(out_ours.square().sum(), alpha)
    assert float((out_ours - out_theirs).detach().abs().max()) == 0.0
    assert float((grad_ours - grad_theirs).abs().max()) == 0.0
    assert grad_ours.abs().sum() > 0


def test_gdas_derives_the_argmax_of_alpha():
    model = _nb201("gdas")
    with torch.no_grad():
        model.alpha.copy_(torch.randn_like(model.alpha))
    expected = tuple(model.primitives[int(i)] for i in model.alpha.argmax(-1))
    assert model.genotype().ops == expected


def test_samplers_of_relaxations_are_not_replaced():
    model = _darts("gdas")
    with pytest.raises(UsageError, match="relaxation gdas makes the mixing weights itself"):
        model.set_arch_sampler(ArchSampler())
    plain = _darts("darts")
    plain.set_arch_sampler(GumbelSampler(1.0, 1.0))  # a regulariser's: allowed on darts
    plain.set_relaxation("darts")  # the same relaxation: the installed sampler stays
    assert isinstance(plain.arch_sampler, GumbelSampler)
    with pytest.raises(UsageError, match="a regulariser's arch sampler is installed"):
        plain.set_relaxation("pc-darts")


@pytest.mark.parametrize("space", sorted(SUPERNETS))
def test_set_relaxation_equals_building_with_it_in_shape(space):
    built = SUPERNETS[space]("pc-darts")
    later = SUPERNETS[space]("darts")
    later.set_relaxation("pc-darts")
    assert later.config == built.config
    assert {k: v.shape for k, v in later.state_dict().items()} == \
        {k: v.shape for k, v in built.state_dict().items()}
    assert len(later.arch_parameters()) == len(built.arch_parameters())
    assert later(torch.rand(2, 1, 8, 8)).shape == (2, 10)


# -- through the search ------------------------------------------------------------------------
def _config(out: Path, space: str, relaxation: str, **changes) -> SearchConfig:
    base = dict(dataset="synthetic", dataset_options={"n_train": 96, "n_test": 32}, C=4,
                layers=3, batch_size=16, epochs=2, warmup_epochs=0, device="cpu", seed=3,
                out=str(out), draw_every=0, threads=1, space=space, relaxation=relaxation)
    base.update(changes)
    return SearchConfig(**base)


@pytest.mark.parametrize("space", sorted(SUPERNETS))
@pytest.mark.parametrize("relaxation", ["pc-darts", "gdas"])
def test_search_derives_a_genotype_and_the_payload_rebuilds_it(tmp_path, space, relaxation):
    result = run_search(_config(tmp_path / "run", space, relaxation, epochs=1,
                                max_steps_per_epoch=2), show_progress=False)
    prov = result.genotype.provenance
    assert prov["supernet"]["relaxation"] == relaxation
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    payload = state["model"]
    assert payload["arch"]["relaxation"] == relaxation
    model = model_from_payload(payload, source="test")
    assert model.relaxation == make_relaxation(relaxation)
    assert model.genotype() == result.genotype
    for name, value in model.state_dict().items():  # β included (PC-DARTS)
        assert torch.equal(value, payload["state_dict"][name]), name
    again = model_payload(model)
    assert again["arch"] == payload["arch"]
    if relaxation == "pc-darts":
        assert any(k.startswith("arch_sampler.beta_") for k in payload["state_dict"])


def test_the_search_anneals_gdas_temperature_by_epoch(tmp_path):
    seen: dict[int, float] = {}
    run_search(_config(tmp_path / "run", "darts", "gdas", epochs=3, warmup_epochs=1,
                       max_steps_per_epoch=1),
               show_progress=False,
               callbacks=[on_step(lambda t: seen.__setitem__(t.epoch, t.model.arch_sampler.tau))])
    assert seen == pytest.approx({0: 10.0, 1: 5.05, 2: 0.1})  # epoch 0 is warm-up: no α step


class _StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, task, record) -> None:  # noqa: D102
        if record["epoch"] == 1:
            task.request_stop("one epoch")


@pytest.mark.parametrize("space, relaxation", [("darts", "pc-darts"), ("darts", "gdas"),
                                               ("nb201", "gdas")])
def test_resumed_search_is_bit_identical(tmp_path, space, relaxation):
    """2 epochs in one run, and 1 epoch + a resumed epoch: α, β and every weight equal."""
    run_search(_config(tmp_path / "ref", space, relaxation, max_steps_per_epoch=2),
               show_progress=False)
    with pytest.raises(SearchInterrupted, match="one epoch"):
        run_search(_config(tmp_path / "run", space, relaxation, max_steps_per_epoch=2),
                   show_progress=False, callbacks=[_StopAfterFirstEpoch()])
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 1
    run_search(overrides={"out": str(tmp_path / "run")}, resume=True, show_progress=False)
    ref = load_checkpoint(tmp_path / "ref" / "checkpoint.pt")["model"]["state_dict"]
    run = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"]["state_dict"]
    assert ref.keys() == run.keys()
    for key in ref:
        assert torch.equal(ref[key], run[key]), key


# -- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize("settings, message", [
    ({"relaxation": "gdas", "order": 2}, "relaxation gdas cannot run with order 2: its "
                                         "unrolled and shifted forward passes"),
    ({"relaxation": "gdas", "regularizer": "lipschitz"},
     "relaxation gdas cannot run with regularizer lipschitz"),
    ({"relaxation": "gdas", "regularizer": "advrush:1,sdarts-rs"},
     "relaxation gdas cannot run with regularizer sdarts-rs"),
    ({"relaxation": "pc-darts", "regularizer": "lipschitz:0.5"},
     "relaxation pc-darts cannot run with regularizer lipschitz"),
    ({"relaxation": "pc-darts", "regularizer": "drnas"},
     "relaxation pc-darts cannot run with regularizer drnas"),
    ({"relaxation": "pc-darts", "C": 6}, r"C \(--channels\) must be a multiple of k = 4"),
    ({"relaxation": "pc-darts", "relaxation_options": {"k": 0}},
     "relaxation pc-darts: option k must be at least 1, got 0"),
    ({"relaxation": "pc-darts", "relaxation_options": {"kk": 2}},
     r"relaxation pc-darts: unknown option\(s\) kk \(known: k, edge_normalization\)"),
    ({"relaxation": "gdas", "relaxation_options": {"tau_min": 2, "tau_max": 1}},
     "relaxation gdas: options need 0 < tau_min <= tau_max"),
    ({"relaxation": "gdas", "relaxation_options": {"tau_max": "hot"}},
     "relaxation gdas: option tau_max: expected a finite number"),
    ({"relaxation": "darts", "relaxation_options": {"k": 4}},
     r"relaxation darts: unknown option\(s\) k \(known: none\)"),
    ({"relaxation": "sparse"}, r"unknown relaxation 'sparse' \(choose from: .*darts"),
])
def test_combinations_that_cannot_work_are_refused_in_one_line(settings, message):
    with pytest.raises(UsageError, match=message) as info:
        resolve_config(SearchConfig, None, {"C": 4, "layers": 3, **settings})
    assert "\n" not in str(info.value)


def test_combinations_that_work_are_accepted():
    for settings in ({"relaxation": "pc-darts", "order": 2},
                     {"relaxation": "pc-darts", "regularizer": "advrush,beta,sdarts-adv"},
                     {"relaxation": "pc-darts", "regularizer": "drnas",
                      "relaxation_options": {"edge_normalization": False}},
                     {"relaxation": "gdas", "regularizer": "advrush,beta,jacobian"}):
        resolve_config(SearchConfig, None, {"C": 4, "layers": 3, **settings})


def test_the_command_line_refuses_in_one_line(tmp_path, capsys):
    from robustnas.cli import main

    code = main(["search", "--relaxation", "gdas", "--order", "2", "--dataset", "synthetic",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "relaxation gdas cannot run with order 2" in err
    assert len(err.splitlines()) == 1


def test_bench_search_times_the_relaxations_and_refuses_what_the_search_refuses(capsys):
    import json

    from robustnas.cli import main

    tiny = ["bench", "search", "--channels", "4", "--layers", "3", "--batch-size", "2",
            "--image-size", "8", "--warmup", "0", "--iters", "1", "--rounds", "1",
            "--device", "cpu", "--no-memory"]
    assert main([*tiny, "--variants", "first,pc-darts,gdas", "--json"]) == 0
    rows = {r["variant"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert list(rows) == ["first", "pc-darts", "gdas"]
    assert main([*tiny, "--variants", "first,gdas+second"]) == 2
    assert "relaxation gdas cannot run with order 2" in capsys.readouterr().err
