"""NAS-Bench-201 through the shared machinery: supernet, derivation, checkpoints, space
registry, search (first/second order, AdvRush, collapse guard), retrain and evaluate on digits."""

from __future__ import annotations

import json
import re

import pytest
import torch

from robustnas.errors import UsageError
from robustnas.space.models import model_from_payload, model_payload
from robustnas.space.nb201 import NB201Genotype, NB201Network
from robustnas.space.nb201.ops import NB201_OPS
from robustnas.space.nb201.supernet import NB201SearchCell, NB201SuperNet
from robustnas.space.sampling import sample_genotypes
from robustnas.space.spaces import SPACES, get_space, load_any_genotype, spec_space

EXAMPLE = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
           "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


@pytest.fixture
def supernet() -> NB201SuperNet:
    torch.manual_seed(0)
    return NB201SuperNet(C=4, N=1, num_classes=10, in_channels=1, mean=(0.5,), std=(0.25,))


def test_supernet_parameters_and_bn_settings(supernet):
    assert supernet.alpha.shape == (6, 5)
    arch = {id(p) for p in supernet.arch_parameters()}
    weights = {id(p) for p in supernet.weights()}
    assert arch == {id(supernet.alpha)} and not arch & weights
    assert arch | weights == {id(p) for p in supernet.parameters()}
    cells = [c for c in supernet.cells if isinstance(c, NB201SearchCell)]
    assert len(cells) == 3
    bns = [m for c in cells for m in c.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not bn.affine and not bn.track_running_stats for bn in bns)
    assert supernet(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_one_alpha_shared_by_all_cells(supernet):
    """α gets gradient from every cell: zeroing one cell's contribution changes it."""
    x = torch.rand(4, 1, 8, 8)
    supernet(x).sum().backward()
    assert supernet.alpha.grad is not None and supernet.alpha.grad.abs().sum() > 0


def test_derivation_is_argmax_per_edge_with_none(supernet):
    with torch.no_grad():
        supernet.alpha.zero_()
        for k, op in enumerate(["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                "avg_pool_3x3", "none"]):
            supernet.alpha[k, NB201_OPS.index(op)] = 1.0
    geno = supernet.genotype({"seed": 1})
    assert geno.ops == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                        "avg_pool_3x3", "none")
    assert geno.provenance["seed"] == 1
    assert supernet.decisiveness().verdict == "clear"


def test_payload_round_trip(supernet):
    back = model_from_payload(model_payload(supernet))
    assert isinstance(back, NB201SuperNet)
    assert torch.equal(back.alpha, supernet.alpha)
    net = NB201Network(NB201Genotype.from_string(EXAMPLE), C=4, N=1, in_channels=1)
    back_net = model_from_payload(model_payload(net))
    assert isinstance(back_net, NB201Network) and back_net.genotype == net.genotype
    x = torch.rand(2, 1, 8, 8)
    net.eval()
    back_net.eval()
    assert torch.allclose(net(x), back_net(x))


def test_space_registry_and_detection(tmp_path):
    assert {"darts", "nb201"} <= set(SPACES)
    with pytest.raises(UsageError, match="unknown search space 'foo'"):
        get_space("foo")
    assert spec_space(EXAMPLE) == "nb201" and spec_space("DARTS_V2") == "darts"
    path = tmp_path / "g.json"
    path.write_text(json.dumps(NB201Genotype.from_string(EXAMPLE).to_dict()))
    assert spec_space(path) == "nb201"
    assert load_any_genotype(str(path)) == NB201Genotype.from_string(EXAMPLE)
    net = get_space("nb201").network(load_any_genotype(EXAMPLE), C=4, layers=6, num_classes=3,
                                     in_channels=1, mean=(0.5,), std=(0.25,))
    assert isinstance(net, NB201Network) and net.config["N"] == 2


def test_sample_nb201_space():
    cells = sample_genotypes(50, seed=3, space="nb201")
    assert all(isinstance(c, NB201Genotype) for c in cells) and len(set(cells)) == 50
    assert cells[0].provenance["space"] == "nb201"


@pytest.mark.parametrize("extra", [
    pytest.param({"order": 2}, marks=pytest.mark.slow),
    {"regularizer": "advrush", "regularizer_options": {"advrush": {"start_epoch": 0}},
     "collapse_max_skips": 0, "collapse_action": "warn"},
])
def test_search_retrain_evaluate_on_digits(tmp_path, extra, capsys):
    from robustnas.evaluation import evaluate
    from robustnas.search import run_search
    from robustnas.train import retrain

    overrides = dict(space="nb201", dataset="digits", epochs=1, batch_size=16, C=4, layers=3,
                     max_steps_per_epoch=2, out=str(tmp_path / "search"), seed=0, **extra)
    result = run_search(overrides=overrides, show_progress=False)
    assert isinstance(result.genotype, NB201Genotype)
    saved = json.loads(result.genotype_path.read_text())
    assert saved["format"] == "robustnas-nb201-genotype"
    assert {p.name for p in result.pictures} == {"cell.png", "cell.svg"}
    if "order" in extra:
        return
    run = retrain(overrides=dict(genotype=str(result.genotype_path), dataset="digits", epochs=1,
                                 batch_size=32, C=4, layers=3, cutout=2,
                                 out=str(tmp_path / "retrain"), eval_n=32, val_n=32),
                  show_progress=False)
    del run
    report = evaluate(str(tmp_path / "retrain" / "best.pt"), dataset="digits", n=16,
                      attacks="clean,fgsm", eps="2/255", sanity=False, progress=False,
                      measures=True, measure_n=4)
    text = json.dumps(report.to_dict())
    assert "fgsm" in text and "lipschitz" in text
    lines = report.to_markdown().splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    row = next(line for line in lines if "NAS-Bench-201" in line and line.startswith("|"))
    # The cell string's "|" are escaped: the row has as many cell borders as the header.
    assert len(re.findall(r"(?<!\\)\|", row)) == header.count("|")


@pytest.mark.parametrize("arch", [EXAMPLE, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                  "|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|"
                                  "+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"])
def test_lipschitz_bound_holds(arch):
    """The composed bound is above every measured ratio ‖f(x+d) - f(x)‖ / ‖d‖ (Monte Carlo);
    an all-none cell makes the network constant (bound 0)."""
    from robustnas.evaluation.lipschitz import lipschitz_upper_bound

    torch.manual_seed(0)
    net = NB201Network(NB201Genotype.from_string(arch), C=4, N=1, in_channels=1).eval()
    for m in net.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.2, 2.0)
    bound = lipschitz_upper_bound(net, (1, 8, 8))
    x = torch.rand(256, 1, 8, 8)
    d = 1e-3 * torch.randn_like(x)
    with torch.no_grad():
        ratio = ((net(x + d) - net(x)).flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1)).max()
    assert float(ratio) <= bound + 1e-9
    if "nor_conv" not in arch and "skip" not in arch and "avg" not in arch:
        assert bound == 0.0
    supernet = NB201SuperNet(C=4, N=1, in_channels=1)
    with pytest.raises(UsageError, match="running statistics"):
        lipschitz_upper_bound(supernet, (1, 8, 8))


def test_cli_info_sample_and_bad_space(tmp_path, capsys):
    from robustnas.cli import main

    assert main(["info", EXAMPLE, "--image-size", "8", "--classes", "100"]) == 0
    out = capsys.readouterr().out
    assert "NAS-Bench-201" in out and "N=5" in out
    assert main(["info", EXAMPLE, "--json", "--image-size", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 802426  # reference formula
    assert main(["sample", "--space", "nb201", "--n", "3", "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    files = sorted((tmp_path / "s").glob("random_*.json"))
    assert len(files) == 3 and spec_space(files[0]) == "nb201"
    assert main(["search", "--space", "nas101", "--dataset", "digits",
                 "--out", str(tmp_path / "x")]) == 2
    assert "unknown search space 'nas101'" in capsys.readouterr().err


def test_study_sources_accept_nb201(tmp_path):
    from robustnas.studies.sources import expand_sources
    from robustnas.studies.spec import parse_study_spec

    spec = parse_study_spec({"architectures": [{"random": 2, "space": "nb201"},
                                               {"arch": EXAMPLE, "label": "example"}],
                             "training": {"dataset": "digits"}}, base_dir=tmp_path)
    archs = expand_sources(spec, tmp_path / "study").architectures
    assert [spec_space(a.spec) for a in archs] == ["nb201"] * 3
    with pytest.raises(UsageError, match="unknown search space 'nas101'"):
        parse_study_spec({"architectures": [{"random": 2, "space": "nas101"}]},
                         base_dir=tmp_path)


def test_retrain_space_check(tmp_path, capsys):
    from robustnas.cli import main

    assert main(["retrain", EXAMPLE, "--space", "darts", "--dataset", "digits",
                 "--out", str(tmp_path / "r")]) == 2
    assert "is not a darts genotype (it is nb201)" in capsys.readouterr().err
    assert main(["retrain", EXAMPLE, "--space", "foo", "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_retrain_resume_with_the_cell_named_again(tmp_path):
    from robustnas.train import retrain

    args = dict(genotype=EXAMPLE, dataset="digits", epochs=1, batch_size=64, C=2, layers=3,
                cutout=2, out=str(tmp_path / "r"), eval_n=16, val_n=16, eval_every=0)
    retrain(overrides=args, show_progress=False)
    retrain(overrides=args, resume=True, show_progress=False)  # same cell named: accepted
    other = "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
    with pytest.raises(UsageError, match="differs from the one"):
        retrain(overrides={**args, "genotype": other}, resume=True, show_progress=False)
