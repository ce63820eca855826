"""Ensembles: forward and gradients equal the explicit average of the members; joint
training with every objective; checkpoints; post-hoc white-box evaluation."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from robustnas.cli import main
from robustnas.errors import UsageError
from robustnas.space.complexity import count_parameters
from robustnas.space.ensemble import Ensemble, resolve_inits
from robustnas.space.models import (
    build_architecture,
    build_ensemble,
    model_from_payload,
    model_payload,
    parse_member_list,
)

KW = dict(num_classes=10, in_channels=1, C=4, layers=3)


def _members(seed: int = 0):
    torch.manual_seed(seed)
    return [build_architecture(name, **KW) for name in ("DARTS_V2", "PDARTS", "DARTS_V2")]


def _input_grad(model, x, y):
    x = x.clone().requires_grad_(True)
    F.cross_entropy(model(x), y, reduction="sum").backward()
    return x.grad


def test_logit_average_forward_and_gradients_equal_explicit_average():
    members = [m.eval() for m in _members()]
    ens = Ensemble([copy.deepcopy(m) for m in members], combine="logits").eval()
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    explicit = torch.stack([m(x) for m in members]).mean(0)
    assert torch.allclose(ens(x), explicit, atol=1e-6)
    # input gradient of the loss of the averaged logits, computed by hand
    xg = x.clone().requires_grad_(True)
    F.cross_entropy(torch.stack([m(xg) for m in members]).mean(0), y,
                    reduction="sum").backward()
    assert torch.allclose(_input_grad(ens, x, y), xg.grad, atol=1e-6)
    # the gradient of the ensemble's mean logit w.r.t. x is the mean of the members'
    xa = x.clone().requires_grad_(True)
    ens(xa).sum().backward()
    per_member = [_input_grad_of_sum(m, x) for m in members]
    assert torch.allclose(xa.grad, torch.stack(per_member).mean(0), atol=1e-6)
    # every member's parameters get gradients (white-box through all members)
    ens.zero_grad()
    F.cross_entropy(ens(x), y).backward()
    for member in ens.members:
        assert all(p.grad is not None and p.grad.abs().sum() > 0
                   for n, p in member.named_parameters() if n.startswith("classifier"))


def _input_grad_of_sum(model, x):
    x = x.clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad


def test_probability_average():
    members = [m.eval() for m in _members(1)]
    ens = Ensemble([copy.deepcopy(m) for m in members], combine="probs").eval()
    x = torch.rand(3, 1, 8, 8)
    probs = torch.stack([m(x).softmax(1) for m in members]).mean(0)
    assert torch.allclose(ens(x).exp(), probs, atol=1e-6)


def test_feature_average_forward_and_gradients():
    members = [m.eval() for m in _members(2)]
    ens = Ensemble([copy.deepcopy(m) for m in members], combine="features").eval()
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([3, 1, 4, 1])
    # members lose their classifiers; one shared pooling + linear head
    assert all(isinstance(m.classifier, torch.nn.Identity) for m in ens.members)
    assert ens.head.in_features == members[0].classifier.in_features
    feats = torch.stack([m.forward_features(x) for m in members]).mean(0)
    explicit = ens.head(feats.mean((2, 3)))
    assert torch.allclose(ens(x), explicit, atol=1e-6)
    xg = x.clone().requires_grad_(True)
    feats = torch.stack([m.forward_features(xg) for m in members]).mean(0)
    F.cross_entropy(ens.head(feats.mean((2, 3))), y, reduction="sum").backward()
    assert torch.allclose(_input_grad(ens, x, y), xg.grad, atol=1e-5)
    # size: every member minus its classifier, plus the shared head
    expected = sum(count_parameters(m) - sum(p.numel() for p in m.classifier.parameters())
                   for m in members) + sum(p.numel() for p in ens.head.parameters())
    assert count_parameters(ens) == expected


def test_payload_round_trip_and_drop_path_reaches_members():
    torch.manual_seed(0)
    ens = build_ensemble("DARTS_V2,resnet18@0.0625", combine="logits", inits="seed000", **KW)
    ens.drop_path_prob = 0.3
    assert ens.members[0].drop_path_prob == 0.3
    ens.eval()
    rebuilt = model_from_payload(model_payload(ens)).eval()
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(rebuilt(x), ens(x))
    assert rebuilt.inits == ["kaiming-normal", "xavier-normal"]


def test_member_lists_and_bad_options():
    assert parse_member_list("3xDARTS_V2") == ["DARTS_V2"] * 3
    assert parse_member_list("resnet18@0.5*2,PDARTS") == ["resnet18@0.5"] * 2 + ["PDARTS"]
    assert resolve_inits("cycled", 4) == resolve_inits("seed000", 4)  # the older spelling
    assert resolve_inits("seed000", 4) == ["kaiming-normal", "xavier-normal",
                                           "kaiming-uniform", "kaiming-normal"]
    with pytest.raises(UsageError):
        parse_member_list("DARTS_V2")
    with pytest.raises(UsageError):
        resolve_inits("orthogonal", 2)
    with pytest.raises(UsageError, match="feature"):  # different feature widths
        build_ensemble("DARTS_V2,resnet18@0.25", combine="features", **KW)
    with pytest.raises(UsageError):
        build_ensemble("DARTS_V2,DARTS_V2", combine="median", **KW)


TINY = ["--dataset", "digits", "--channels", "4", "--layers", "3", "--batch-size", "16",
        "--epochs", "1", "--eval-n", "32", "--eval-steps", "1", "--steps", "1",
        "--device", "cpu", "--cutout", "2", "--set", "max_steps_per_epoch=2",
        "--set", "eval_batch_size=32", "--quiet"]


@pytest.mark.parametrize("objective", [
    "pgd", *(pytest.param(o, marks=pytest.mark.slow) for o in ("none", "trades", "fgsm-rs"))])
def test_joint_ensemble_trains_with_every_objective(tmp_path, objective, capsys):
    out = tmp_path / objective
    assert main(["retrain", "--ensemble", "DARTS_V2,DARTS_V2", "--ensemble-init", "seed000",
                 "--adversarial", objective, *TINY, "--out", str(out)]) == 0
    assert (out / "architecture.json").is_file() and not (out / "genotype.json").exists()
    from robustnas.evaluation.loading import load_candidate

    cand = load_candidate(out / "last.pt")
    assert isinstance(cand.model, Ensemble) and cand.model.combine == "features"
    assert len(cand.model.members) == 2


def test_mismatched_feature_maps_are_refused_before_anything_is_written(tmp_path, capsys):
    """Issue 20 item 4: DARTS_V2 (2x2 maps on 8x8 digits) and resnet18@0.125 (1x1) have
    equal widths but cannot be averaged; that used to surface at the first training step,
    after the run directory had been written."""
    out = tmp_path / "parent" / "run"
    code = main(["retrain", "--ensemble", "DARTS_V2,resnet18@0.125", *TINY, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "feature-map shapes" in err and "(64, 1, 1)" in err and "(64, 2, 2)" in err, err
    assert not (tmp_path / "parent").exists()
    ens = build_ensemble("DARTS_V2,resnet18@0.125", combine="features", **KW)
    with pytest.raises(UsageError, match="feature-map shapes"):
        ens.check_input(1, 8)
    ens.check_input(1, 4)  # 4x4 images: 1x1 maps for both, fine


def test_handcrafted_retrain_resume_and_info(tmp_path, capsys):
    out = tmp_path / "hc"
    assert main(["retrain", "resnet18@0.0625", "--adversarial", "pgd", *TINY,
                 "--out", str(out)]) == 0
    assert "resnet18@0.0625" in (out / "architecture.json").read_text()
    assert main(["retrain", "vgg16-bn", "--resume", str(out), "--quiet"]) == 2
    assert "differs" in capsys.readouterr().err
    assert main(["info", str(out / "last.pt")]) == 0  # sizes from the checkpoint
    shown = capsys.readouterr().out
    assert "resnet18@0.0625" in shown and "1x8x8" in shown
    assert main(["retrain", "DARTS_V2", "--ensemble", "PDARTS,PDARTS", *TINY,
                 "--out", str(tmp_path / "x")]) == 2
    assert "not both" in capsys.readouterr().err


# -- post-hoc ensembles ------------------------------------------------------------------
@pytest.fixture(scope="module")
def member_checkpoints(tmp_path_factory, digits):
    """Three small wide ResNets (different seeds) trained briefly on the digits, saved as
    checkpoints."""
    from robustnas.io import atomic_torch_save

    x, y = digits.train_x.float() / 255, digits.train_y
    folder = tmp_path_factory.mktemp("members")
    paths = []
    for i, name in enumerate(("wrn-10-1@0.5", "wrn-10-1@0.5", "wrn-10-2@0.25")):
        torch.manual_seed(i)
        model = build_architecture(name, num_classes=10, in_channels=1, C=4, layers=3,
                                   mean=[0.3], std=[0.4])
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(25):
            batch = torch.randint(0, len(y), (128,), generator=torch.Generator().manual_seed(step))
            opt.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
        path = folder / f"m{i}.pt"
        atomic_torch_save({"model": model_payload(model.eval()),
                           "dataset": {"name": "digits", "root": None, "options": {}}}, path)
        paths.append(str(path))
    return paths


def test_post_hoc_ensemble_white_box_through_every_member(member_checkpoints):
    from robustnas.evaluation import evaluate
    from robustnas.evaluation.ensemble import ensemble_candidates

    cands = ensemble_candidates(member_checkpoints)
    ens = cands[0].model
    assert isinstance(ens, Ensemble) and ens.combine == "logits"
    assert [c.model for c in cands[1:]] == list(ens.members)  # shared, not copied
    calls = [0] * len(ens.members)
    hooks = [m.register_full_backward_hook(
        lambda mod, gin, gout, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, m in enumerate(ens.members)]
    try:
        report = evaluate(cands[:1], attacks="clean,pgd10", eps="0.25", n=60, batch_size=60,
                          device="cpu", sanity=False, progress=False)
    finally:
        for h in hooks:
            h.remove()
    row = report.models[0]
    robust = row["rows"][0]["attacks"]["pgd10"]
    assert row["clean"] > 80 and robust < row["clean"] - 40, (row["clean"], robust)
    assert all(c >= 10 for c in calls), calls  # every PGD step back-propagated every member


def test_post_hoc_ensemble_cli_reports_ensemble_beside_members(member_checkpoints, tmp_path,
                                                              capsys):
    import json

    out = tmp_path / "report.json"
    assert main(["evaluate", "--ensemble", ",".join(member_checkpoints), "--attacks",
                 "clean,fgsm", "--eps", "0.05", "--n", "40", "--no-sanity", "--quiet",
                 "--device", "cpu", "--out", str(out)]) == 0
    models = json.loads(out.read_text())["models"]
    assert [m["label"] for m in models] == ["ensemble", "m0", "m1", "m2"]
    assert models[0]["architecture"].startswith("ensemble(logits) of 3")
    assert models[0]["params"] == sum(m["params"] for m in models[1:])
    assert main(["evaluate", "--ensemble", member_checkpoints[0], "--out", str(out)]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_post_hoc_ensemble_counts_its_members_as_they_count_themselves(tmp_path):
    """Issue 20 item 3: members with auxiliary heads (DARTS retraining) count without them,
    so the ensemble must too (it counted 921,896 for two 41,866-parameter members)."""
    from robustnas.evaluation.ensemble import ensemble_candidates
    from robustnas.evaluation.loading import describe_model
    from robustnas.io import atomic_torch_save

    paths = []
    for i in range(2):
        torch.manual_seed(i)
        net = build_architecture("DARTS_V2", auxiliary=True, **KW)
        assert count_parameters(net, include_auxiliary=True) > count_parameters(net)
        paths.append(tmp_path / f"m{i}.pt")
        atomic_torch_save({"model": model_payload(net),
                           "dataset": {"name": "digits", "root": None, "options": {}}},
                          paths[-1])
    ensemble, *members = ensemble_candidates(paths)
    each = [describe_model(m.model)["params"] for m in members]
    assert describe_model(ensemble.model)["params"] == sum(each)
    assert count_parameters(ensemble.model, include_auxiliary=True) == sum(
        count_parameters(m.model, include_auxiliary=True) for m in members)


def test_measures_on_ensembles_lipschitz_bound_or_note(digits):
    from robustnas.evaluation import evaluate

    torch.manual_seed(0)
    kw = dict(num_classes=10, in_channels=1)
    probs = build_ensemble("wrn-10-1@0.25,wrn-10-1@0.25", combine="probs", **kw)
    logits = build_ensemble("wrn-10-1@0.25,wrn-10-1@0.25", combine="logits", **kw)
    report = evaluate([probs, logits], attacks="clean", eps="0.1", n=8, data=digits,
                      device="cpu", measures=True, measure_n=4, hessian_iters=2,
                      sanity=False, progress=False)
    meas = report.models[0]["measures"]
    assert meas["jacobian_frobenius"]["mean"] > 0
    assert meas["lipschitz_upper_bound"] is None and "probability" in meas["lipschitz_note"]
    assert report.models[1]["measures"]["lipschitz_upper_bound"] > 0


def test_ensemble_lipschitz_bound_composes_the_members_bounds():
    from robustnas.evaluation.lipschitz import lipschitz_upper_bound

    torch.manual_seed(0)
    net = build_architecture("PDARTS", **KW)
    with torch.no_grad():  # non-trivial batch-norm statistics
        net.train()
        for _ in range(3):
            net(torch.rand(16, 1, 8, 8))
    net.eval()
    single = lipschitz_upper_bound(net, (1, 8, 8))
    twins = Ensemble([net, copy.deepcopy(net)], combine="logits").eval()
    assert lipschitz_upper_bound(twins, (1, 8, 8)) == pytest.approx(single, rel=1e-9)
    feats = Ensemble([copy.deepcopy(net), copy.deepcopy(net)], combine="features").eval()
    assert lipschitz_upper_bound(feats, (1, 8, 8)) > 0
