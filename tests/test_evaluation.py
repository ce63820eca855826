"""Evaluation: worst case, ε sweeps, gradient-masking checks, measures, corruptions, report, CLI.

Independent references come from torch.autograd.functional (Jacobian, Hessian), explicit
matrices (Lipschitz) and plain loops; none of them goes through robustnas.evaluation code.
"""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustnas.attacks import parse_attack_list
from robustnas.cli import main
from robustnas.errors import DataError, UsageError
from robustnas.evaluation import (
    Report,
    conv2d_norm_bound,
    corrupt,
    evaluate,
    harmonic_robustness_score,
    hessian_top_eigenvalue,
    jacobian_frobenius,
    lipschitz_upper_bound,
    parse_eps_list,
)
from robustnas.evaluation import sanity as checks
from robustnas.evaluation.corruptions import CORRUPTIONS, corruption_files, load_corruption_file
from robustnas.evaluation.runner import ModelEvaluator
from robustnas.io import atomic_torch_save
from robustnas.space.darts.catalogue import GENOTYPES
from robustnas.space.darts.network import Network
from robustnas.space.models import model_payload


class Quantise(nn.Module):
    """Rounds pixels to {0, 1}: a zero input gradient almost everywhere (gradient masking)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)


@pytest.fixture(scope="module")
def mlp(fit_digits) -> nn.Module:
    """A small MLP trained on digits (~98% clean)."""
    torch.manual_seed(0)
    return fit_digits(nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(),
                                    nn.Linear(64, 10)))


@pytest.fixture(scope="module")
def masked(fit_digits) -> nn.Module:
    """The same MLP behind a non-differentiable quantisation of its input."""
    torch.manual_seed(0)
    return fit_digits(nn.Sequential(Quantise(), nn.Flatten(), nn.Linear(64, 64), nn.ReLU(),
                                    nn.Linear(64, 10)))


def _network(layers: int = 2, seed: int = 0) -> Network:
    torch.manual_seed(seed)
    return Network(GENOTYPES.get("DARTS_V2"), C=4, num_classes=10, layers=layers,
                   in_channels=1, mean=(0.3,), std=(0.37,)).eval()


def _evaluator(model: nn.Module, digits, n: int, batch_size: int = 64) -> ModelEvaluator:
    return ModelEvaluator(model, digits.test_x[:n], digits.test_y[:n],
                          device=torch.device("cpu"), batch_size=batch_size, seed=0,
                          tick=lambda amount, stage: None)


def _pct(mask: torch.Tensor) -> float:
    return 100.0 * float(mask.float().mean())


# -- (c) per-sample worst case ----------------------------------------------------------------
def test_worst_case_is_per_sample_and(mlp, digits):
    ev = _evaluator(mlp, digits, 200, batch_size=48)  # batches that do not divide n
    attacks = parse_attack_list("clean,fgsm,pgd5,cw5")
    clean, rows, per = ev.attacks(attacks, parse_eps_list("0.05,0.1"))
    x = digits.test_x[:200].float() / 255
    y = digits.test_y[:200]
    with torch.no_grad():
        assert clean == pytest.approx(_pct(mlp(x).argmax(1) == y))
    for row in rows:
        masks = [per[f"{a}@{row['eps_text']}"] for a in ("fgsm", "pgd5", "cw5")]
        expected = per["clean"] & masks[0] & masks[1] & masks[2]
        assert row["worst_case"] == pytest.approx(_pct(expected))
        for name, mask in zip(("fgsm", "pgd5", "cw5"), masks):
            assert row["attacks"][name] == pytest.approx(_pct(mask))
            assert row["worst_case"] <= row["attacks"][name]
        assert row["hrs"] == pytest.approx(harmonic_robustness_score(clean, row["worst_case"]))
        # FGSM is deterministic: the batched runner matches a one-shot reference exactly
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(mlp(xr), y, reduction="sum"), xr)
        with torch.no_grad():
            ref = mlp((x + row["eps"] * g.sign()).clamp(0, 1)).argmax(1) == y
        assert row["attacks"]["fgsm"] == pytest.approx(_pct(ref))


# -- (d) ε sweep --------------------------------------------------------------------------------
def test_eps_sweep_in_one_call(mlp, digits):
    report = evaluate(mlp, data=digits, attacks="clean,pgd5", eps="0.1, 1/255,0,0.05",
                      n=120, sanity=False, progress=False)
    (m,) = report.models
    assert [r["eps_text"] for r in m["rows"]] == ["0", "1/255", "0.05", "0.1"]
    accs = [r["attacks"]["pgd5"] for r in m["rows"]]
    assert accs[0] == pytest.approx(m["clean"])  # ε = 0 changes nothing
    assert all(b <= a + 1e-9 for a, b in zip(accs, accs[1:]))
    assert accs[-1] < m["clean"] - 20
    # a figure does not depend on the other ε of the sweep (per-(attack, ε) seeds)
    alone = evaluate(mlp, data=digits, attacks="pgd5", eps="0.05", n=120, sanity=False,
                     progress=False)
    assert alone.accuracy("model1", "pgd5") == pytest.approx(accs[2])


@pytest.mark.parametrize("text", ["8/0", "abc", "-1", "", "2", "nan"])
def test_malformed_eps_is_a_usage_error(text):
    with pytest.raises(UsageError):
        parse_eps_list(text)


# -- (e) gradient-masking checks ---------------------------------------------------------------
def test_normal_model_raises_no_warning(mlp, digits):
    report = evaluate(mlp, data=digits, attacks="clean,fgsm,pgd10", eps="0.05,0.1", n=100,
                      sanity_n=100, progress=False)
    m = report.models[0]
    assert {c["check"] for c in m["sanity"]} >= {"eps_monotone", "large_eps", "more_steps",
                                                 "fgsm_vs_pgd"}
    assert report.warnings == [] and all(c["passed"] for c in m["sanity"])


def test_gradient_masking_model_is_flagged(masked, digits):
    x = digits.test_x[:100].float() / 255
    with torch.no_grad():
        assert _pct(masked(x).argmax(1) == digits.test_y[:100]) > 70
    report = evaluate(masked, data=digits, attacks="clean,fgsm,pgd10", eps="0.05,0.1",
                      n=100, sanity_n=100, progress=False)
    m = report.models[0]
    failed = {c["check"] for c in m["sanity"] if not c["passed"]}
    assert "large_eps" in failed  # zero gradients: PGD at ε = 0.5 cannot fool it
    assert any("gradient" in w and "masked" in w for w in report.warnings)
    assert "## Warnings" in report.to_markdown() and "FAILED" in report.to_markdown()


def test_check_functions_flag_each_failure():
    rows = [{"eps": 0.01, "eps_text": "a", "attacks": {"fgsm": 50.0, "pgd20": 40.0},
             "worst_case": 40.0},
            {"eps": 0.02, "eps_text": "b", "attacks": {"fgsm": 45.0, "pgd20": 60.0},
             "worst_case": 45.0}]
    mono = {r["detail"].split(":")[0]: r["passed"] for r in checks.eps_monotone(rows, 1000)}
    assert mono == {"fgsm": True, "pgd20": False, "worst_case": False}
    assert [r["passed"] for r in checks.fgsm_vs_pgd(rows, 1000)] == [True, False]
    assert not checks.more_steps(30.0, 35.0, "pgd20", "pgd100", "b", 1000)["passed"]
    assert checks.more_steps(30.0, 30.5, "pgd20", "pgd100", "b", 1000)["passed"]
    assert not checks.large_eps(12.0, "0.5", "pgd20", 1000)["passed"]
    assert checks.large_eps(0.0, "0.5", "pgd20", 1000)["passed"]
    square = [{"eps_text": "a", "attacks": {"square": 10.0, "pgd20": 40.0}}]
    assert not checks.blackbox_vs_whitebox(square, 1000)[0]["passed"]
    assert checks.tolerance(50) == 4.0 and checks.tolerance(10_000) == 1.0


# -- (f) measures --------------------------------------------------------------------------------
def test_jacobian_frobenius_matches_autograd():
    model = _network()
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for output, fn in (("logits", model), ("probs", lambda t: torch.softmax(model(t), 1))):
        full = torch.autograd.functional.jacobian(fn, x)  # (3, 10, 3, 1, 8, 8)
        ref = torch.stack([full[i, :, i].norm() for i in range(3)])
        ours = jacobian_frobenius(model, x, output=output)
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)
    est = jacobian_frobenius(model, x, projections=400, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est, jacobian_frobenius(model, x), rtol=0.15, atol=0)


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh])
def test_hessian_top_eigenvalue_matches_explicit_hessian(act):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), act(), nn.Linear(12, 5))
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 3, 4])
    ours = hessian_top_eigenvalue(model, x, y, iters=1000, tol=1e-7,
                                  generator=torch.Generator().manual_seed(0))
    for i in range(3):
        h = torch.autograd.functional.hessian(
            lambda xi, yi=y[i:i + 1]: F.cross_entropy(model(xi[None]), yi), x[i]
        ).reshape(16, 16)
        eig = torch.linalg.eigvalsh(h.double())
        if act is nn.ReLU:  # piecewise linear: PSD, so largest magnitude = largest
            assert eig.min() > -1e-6
            expected = eig[eig.abs().argmax()]
        else:  # indefinite: the function returns the largest (algebraic) eigenvalue
            expected = eig.max()
        assert float(ours[i]) == pytest.approx(float(expected), rel=2e-2, abs=1e-5)


def test_lipschitz_bound_exceeds_empirical_lower_bound():
    model = _network(layers=3)
    model.train()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for s in range(3):
            model(torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(s)))
    model.eval()
    bound = lipschitz_upper_bound(model, (1, 8, 8))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, generator=g)
    y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        ratios = (model(x) - model(y)).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    local = max(float(torch.linalg.matrix_norm(
        torch.autograd.functional.jacobian(model, x[i:i + 1]).reshape(10, 64), ord=2))
        for i in range(4))
    assert math.isfinite(bound)
    assert bound >= float(ratios.max()) and bound >= local


def test_lipschitz_bound_is_exact_for_a_linear_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 5)).eval()
    sigma = float(torch.linalg.matrix_norm(model[1].weight.detach().double(), ord=2))
    assert lipschitz_upper_bound(model, (1, 4, 4)) == pytest.approx(sigma, rel=1e-6)
    v = torch.linalg.svd(model[1].weight.detach())[2][0].view(1, 1, 4, 4)
    with torch.no_grad():  # the top right-singular vector attains it
        assert float((model(v) - model(0 * v)).norm()) == pytest.approx(sigma, rel=1e-4)


@pytest.mark.parametrize("stride,padding,groups", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_conv_norm_bound_dominates_the_explicit_operator(stride, padding, groups):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, stride=stride, padding=padding, groups=groups, bias=False)
    matrix = torch.autograd.functional.jacobian(conv, torch.zeros(1, 2, 6, 6)).reshape(-1, 72)
    exact = float(torch.linalg.matrix_norm(matrix, ord=2))
    bound = conv2d_norm_bound(conv.weight, (6, 6), conv.dilation, groups)
    assert exact <= bound + 1e-6 and bound <= 2.5 * exact


def test_harmonic_robustness_score():
    assert harmonic_robustness_score(80.0, 40.0) == pytest.approx(2 * 80 * 40 / 120)
    assert harmonic_robustness_score(50.0, 50.0) == pytest.approx(50.0)
    assert harmonic_robustness_score(100.0, 0.0) == 0.0
    assert harmonic_robustness_score(0.0, 0.0) == 0.0  # C + R = 0: defined as 0, no NaN


# -- (g) corruptions -------------------------------------------------------------------------------
def _write_cifar_c(directory, blocks: list[np.ndarray], labels: np.ndarray, name: str) -> None:
    directory.mkdir(exist_ok=True)
    np.save(directory / f"{name}.npy", np.concatenate(blocks))  # severity 1 first
    np.save(directory / "labels.npy", labels)


def test_corruption_files_are_read_per_severity(mlp, digits, tmp_path):
    m = 6
    x = digits.test_x[: 5 * m]
    y = digits.test_y[: 5 * m]
    nhwc = x.permute(0, 2, 3, 1).numpy()
    blocks = [nhwc[s * m:(s + 1) * m] for s in range(5)]
    _write_cifar_c(tmp_path, blocks, y.numpy(), "fog")
    np.save(tmp_path / "zoom_blur.npy", np.concatenate(blocks[::-1]))
    assert corruption_files(tmp_path) == ["fog", "zoom_blur"]
    xs, ys = load_corruption_file(tmp_path, "fog", 3, n=4)
    assert torch.equal(xs, x[2 * m:2 * m + 4]) and torch.equal(ys, y[2 * m:2 * m + 4])
    result = _evaluator(mlp, digits, m).corruptions(tmp_path)
    with torch.no_grad():
        per_block = [_pct(mlp(x[s * m:(s + 1) * m].float() / 255).argmax(1)
                          == y[s * m:(s + 1) * m]) for s in range(5)]
    fog = result["by_corruption"]["fog"]
    assert [fog[str(s)] for s in range(1, 6)] == pytest.approx(per_block)
    assert fog["mean"] == pytest.approx(sum(per_block) / 5)
    assert result["source"].startswith("files")


def test_corruption_files_bad_layout(tmp_path, digits, mlp):
    with pytest.raises(DataError):
        corruption_files(tmp_path)  # no labels.npy
    np.save(tmp_path / "labels.npy", np.zeros(10, dtype=np.int64))
    np.save(tmp_path / "fog.npy", np.zeros((10, 8, 8, 1), dtype=np.float32))
    with pytest.raises(DataError):
        load_corruption_file(tmp_path, "fog", 1)
    np.save(tmp_path / "fog.npy", np.zeros((10, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(DataError):  # 3-channel files for a 1-channel test set
        _evaluator(mlp, digits, 2).corruptions(tmp_path)


def _smooth_images(n: int, channels: int, size: int) -> torch.Tensor:
    small = torch.rand(n, channels, 4, 4, generator=torch.Generator().manual_seed(0))
    x = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    return (x * 0.8 + 0.1).clamp(0, 1)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_generated_corruptions(name):
    for x in (_smooth_images(6, 3, 32), _smooth_images(6, 1, 8)):
        diffs = []
        for sev in range(1, 6):
            out = corrupt(x, name, sev, torch.Generator().manual_seed(sev))
            again = corrupt(x, name, sev, torch.Generator().manual_seed(sev))
            assert out.shape == x.shape and torch.equal(out, again)
            assert out.min() >= 0 and out.max() <= 1
            assert torch.equal(out, (out * 255).round() / 255)  # stored like uint8 images
            diffs.append(float((out - x).abs().mean()))
            assert diffs[-1] > 1e-3  # every severity changes the images
        # stronger severity, larger change. JPEG error is not strictly monotone in the
        # quality, so it gets a little slack; pixelating 8x8 images to 7, 7, 6, 6, 5 pixels
        # is not monotone either (6 does not divide 8), so only 32x32 is checked there.
        if name == "pixelate" and x.shape[-1] < 32:
            continue
        slack = 0.15 * max(diffs) if name == "jpeg_compression" else 1e-4
        assert all(b >= a - slack for a, b in zip(diffs, diffs[1:])), diffs
    with pytest.raises(ValueError):
        corrupt(x, name, 6)


# -- (h) report and comparison table ---------------------------------------------------------------
def _checkpoint(path, seed: int) -> str:
    atomic_torch_save({"model": model_payload(_network(seed=seed)),
                       "dataset": {"name": "digits", "root": None, "options": {}}}, path)
    return str(path)


def test_report_files_and_generated_corruptions(mlp, digits, tmp_path):
    report = evaluate(mlp, data=digits, attacks="clean,fgsm,pgd3", eps="0.1", n=40,
                      measures=True, measure_n=8, hessian_iters=5, corruptions=True,
                      sanity=False, progress=False, labels=["mlp"])
    json_path, md_path = report.save(tmp_path / "out" / "report.json")
    data = json.loads(json_path.read_text())
    assert data["format"] == "robustnas-evaluation" and data["settings"]["eps"] == ["0.1"]
    m = data["models"][0]
    assert m["label"] == "mlp" and m["n"] == 40 and m["params"] == 64 * 64 + 64 + 650
    assert set(m["corruptions"]["by_corruption"]) == set(CORRUPTIONS)
    assert all(set(v) == {"1", "2", "3", "4", "5", "mean"}
               for v in m["corruptions"]["by_corruption"].values())
    meas = m["measures"]
    assert meas["jacobian_frobenius"]["mean"] > 0 and meas["lipschitz_upper_bound"] > 0
    md = md_path.read_text()
    assert md_path.suffix == ".md" and "| mlp |" in md and "Corruptions" in md
    assert Report.from_dict(data).table() == report.table()


def test_cli_compares_checkpoints_and_writes_tensorboard(tmp_path, capsys):
    a, b = _checkpoint(tmp_path / "a.pt", 0), _checkpoint(tmp_path / "b.pt", 1)
    out = tmp_path / "rep" / "r.json"
    rc = main(["evaluate", a, b, "--attacks", "clean,fgsm,pgd3", "--eps", "0.1", "--n", "16",
               "--no-sanity", "--no-progress", "--out", str(out),
               "--run-dir", str(tmp_path / "tb")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = captured.out.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("model "))
    head = re.split(r"\s{2,}", lines[at].strip())
    assert head == ["model", "architecture", "params (M)", "ε", "clean", "fgsm", "pgd3",
                    "worst case", "HRS"]
    body = lines[at + 1:at + 3]
    assert [ln.split()[0] for ln in body] == ["a", "b"]  # one row per model
    assert all("DARTS_V2" in ln for ln in body)
    data = json.loads(out.read_text())
    assert [m["label"] for m in data["models"]] == ["a", "b"]
    assert out.with_suffix(".md").is_file()
    for label in ("a", "b"):
        assert list((tmp_path / "tb" / label).glob("events.out.tfevents.*"))


def test_terminal_shows_measures_corruptions_and_unescaped_cells(mlp, digits, tmp_path,
                                                                 capsys):
    report = evaluate(mlp, data=digits, attacks="clean,fgsm", eps="0.05,0.1", n=16,
                      measures=True, measure_n=4, hessian_iters=2, corruptions=True,
                      sanity=False, progress=False, labels=["mlp"], run_dir=tmp_path / "tb")
    assert report.models[0]["classes"] == 10  # the studies' chance level
    lines = report.summary_lines()
    assert lines[0].startswith("mlp: measures on 4 images: Jacobian Frobenius norm")
    assert lines[1].startswith("mlp: corruptions (") and "mean accuracy" in lines[1]
    cell = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    report.models[0]["architecture"] = cell
    assert cell in report.text_table() and "\\|" not in report.text_table()
    assert cell.replace("|", "\\|") in report.table()  # Markdown still escapes
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb" / "mlp"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("eval/fgsm")] == [5, 10]  # ε in 1/100, not 0, 1
    assert "eval/eps_axis/text_summary" in acc.Tags()["tensors"]


def test_eps_step_scale():
    from robustnas.evaluation.api import eps_step_scale

    assert eps_step_scale([2 / 255, 8 / 255]) == (255, "1/255")
    assert eps_step_scale([0.05, 0.1]) == (100, "1/100")
    assert eps_step_scale([0.3, 1.0]) == (10, "1/10")
    assert eps_step_scale([0.0, 1.0]) == (255, "1/255")


# -- (i) bad input ---------------------------------------------------------------------------------
@pytest.fixture
def checkpoint(tmp_path) -> str:
    return _checkpoint(tmp_path / "net.pt", 0)


def _run_bad(argv, capsys) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("case", ["missing", "random_bytes", "not_a_model", "pickled_object"])
def test_cli_bad_checkpoint(case, tmp_path, capsys):
    path = tmp_path / "bad.pt"
    if case == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "not_a_model":
        torch.save({"weights": torch.zeros(3)}, path)
    elif case == "pickled_object":
        torch.save({"model": Quantise()}, path)  # refused by weights_only=True
    err = _run_bad(["evaluate", str(path), "--n", "4", "--out", str(tmp_path / "r.json")],
                   capsys)
    assert str(path) in err


@pytest.mark.parametrize("argv,needle", [
    (["--attacks", "clean,foo"], "unknown attack"),
    (["--attacks", "fgsm7"], "no step count"),
    (["--eps", "8/0"], "8/0"),
    (["--eps", "abc"], "abc"),
    (["--eps=-1"], "-1"),
    (["--eps", "8"], "8/255"),
    (["--n", "0"], "--n"),
])
def test_cli_bad_options(argv, needle, checkpoint, tmp_path, capsys):
    err = _run_bad(["evaluate", checkpoint, *argv, "--out", str(tmp_path / "r.json")], capsys)
    assert needle in err


def test_checkpoints_load_with_weights_only(checkpoint, tmp_path, monkeypatch):
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    evaluate(checkpoint, attacks="clean", eps="0.1", n=4, sanity=False, progress=False)
    assert calls == [True]


# -- AutoAttack from the CLI, model card --------------------------------------------------------
def test_cli_autoattack_end_to_end_with_model_card(checkpoint, tmp_path, capsys):
    pytest.importorskip("pyautoattack")
    out, card = tmp_path / "aa.json", tmp_path / "cards" / "card.json"
    rc = main(["evaluate", checkpoint, "--attacks", "clean,pgd3,autoattack", "--eps", "0.1",
               "--n", "12", "--aa-steps", "2", "--aa-queries", "10", "--no-sanity",
               "--no-progress", "--out", str(out), "--model-card", str(card),
               "--card-name", "tiny-darts"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "evaluating net: network DARTS_V2" in captured.err  # says what it evaluates
    m = json.loads(out.read_text())["models"][0]
    row = m["rows"][0]
    assert set(row["components"]) == {f"autoattack/{p}" for p in
                                      ("apgd-ce", "apgd-t", "fab-t", "square")}
    assert row["attacks"]["autoattack"] == row["components"]["autoattack/square"]
    assert row["worst_case"] <= min(row["attacks"].values())
    assert any(c["check"] == "autoattack_checks" for c in m["sanity"])  # even with --no-sanity
    data = json.loads(card.read_text())
    for key in ("name", "architecture", "params", "dataset", "threat_model", "eps", "clean_acc",
                "autoattack_acc", "number_forward_passes", "additional_data", "evaluation",
                "genotype", "robustnas", "autoattack_log"):
        assert key in data, key
    assert data["name"] == "tiny-darts" and data["dataset"] == "digits"
    assert data["threat_model"] == "Linf" and data["eps"] == "0.1"
    assert data["clean_acc"] == f"{m['clean']:.2f}"
    assert data["autoattack_acc"] == f"{row['attacks']['autoattack']:.2f}"
    assert data["params"] == m["params"] and data["number_forward_passes"] == 1
    assert data["genotype"]["provenance"]["name"] == "DARTS_V2"
    assert data["robustnas"]["version"] and data["evaluation"]["n_examples"] == 12
    # 2 iterations on 12 of 360 images: the card says it is not a standard figure
    assert data["evaluation"]["standard"] is False and "non-standard" in data["footnote"]
    assert any("APGD-CE" in line for line in data["autoattack_log"])


@pytest.mark.parametrize("argv,needle", [
    (["--attacks", "clean,pgd3"], "add autoattack"),
    (["--attacks", "autoattack", "--eps", "0.1,0.2"], "one ε"),
])
def test_cli_model_card_bad_requests(argv, needle, checkpoint, tmp_path, capsys):
    pytest.importorskip("pyautoattack")
    err = _run_bad(["evaluate", checkpoint, *argv, "--model-card", str(tmp_path / "c.json"),
                    "--out", str(tmp_path / "r.json")], capsys)
    assert needle in err
    assert not (tmp_path / "r.json").exists()  # refused before any work


def test_autoattack_surfaces_its_gradient_masking_check(masked, digits):
    pytest.importorskip("pyautoattack")
    report = evaluate(masked, data=digits, attacks="clean,apgd-t", eps="0.1", n=24,
                      sanity=False, progress=False, aa_steps=3)
    m = report.models[0]
    assert any("zero gradient" in w for w in report.warnings)
    assert any(c["check"] == "autoattack_checks" and not c["passed"] for c in m["sanity"])
    assert m["autoattack"][0]["log"] and "zero gradient" in report.to_markdown()


def test_cli_autoattack_without_library(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyautoattack", None)
    err = _run_bad(["evaluate", checkpoint, "--attacks", "clean,autoattack",
                    "--out", str(tmp_path / "r.json")], capsys)
    assert 'pip install -e ".[autoattack]"' in err


# -- search checkpoints, progress, report wording ------------------------------------------------
def _supernet_checkpoint(path) -> str:
    from robustnas.space.darts.supernet import SuperNet

    torch.manual_seed(0)
    net = SuperNet(C=2, num_classes=10, layers=3, steps=2, multiplier=2, in_channels=1,
                   mean=(0.5,), std=(0.25,))
    atomic_torch_save({"model": model_payload(net),
                       "dataset": {"name": "digits", "root": None, "options": {}}}, path)
    return str(path)


def test_cli_supernet_needs_explicit_flag(tmp_path, capsys):
    ckpt = _supernet_checkpoint(tmp_path / "checkpoint.pt")
    out = tmp_path / "r.json"
    err = _run_bad(["evaluate", ckpt, "--n", "4", "--out", str(out)], capsys)
    assert "robustnas derive" in err and "robustnas retrain" in err and "--supernet" in err
    assert not out.exists()
    rc = main(["evaluate", ckpt, "--supernet", "--attacks", "clean", "--n", "4",
               "--no-sanity", "--no-progress", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "supernet of a search checkpoint" in captured.err
    assert json.loads(out.read_text())["models"][0]["architecture"].startswith("supernet")


def test_progress_bar_counts_images_times_attacks_and_ends_at_100(mlp, digits, capsys):
    evaluate(mlp, data=digits, attacks="clean,fgsm,cw3", eps="0.05,0.1", n=20, sanity_n=10,
             measures=True, measure_n=5, hessian_iters=2, progress=True)
    err = capsys.readouterr().err
    # clean 20 + 2 attacks × 2 ε × 20 + sanity (large ε, pgd20 base, pgd100) 3 × 10 + 5
    total = 20 + 80 + 30 + 5
    assert f"{total}/{total}" in err and "100%" in err and "img×attack" in err


def test_report_wording_lipschitz_log_scale_and_tolerance(mlp, digits):
    report = evaluate(mlp, data=digits, attacks="clean,pgd5", eps="0.1", n=30, sanity_n=30,
                      measures=True, measure_n=4, hessian_iters=2, progress=False)
    md = report.to_markdown()
    log10 = report.models[0]["measures"]["lipschitz_log10"]
    assert f"10^{log10:.1f}" in md and "not an estimate" in md
    more = next(c for c in report.models[0]["sanity"] if c["check"] == "more_steps")
    assert "points" in more["detail"] and "random starts" in more["detail"]


def test_reports_tell_searched_cells_apart():
    from robustnas.evaluation.loading import architecture_name
    from robustnas.space.darts.catalogue import GENOTYPES
    from robustnas.space.darts.genotype import make_genotype
    from robustnas.space.darts.network import Network

    g = GENOTYPES.get("DARTS_V2")
    found = {"dataset": "digits", "regularizer": "advrush", "seed": 0, "epoch": 4}

    def name(genotype) -> str:
        return architecture_name(Network(genotype, C=4, num_classes=10, layers=3,
                                         in_channels=1))

    assert name(g) == "DARTS_V2 (C=4, 3 cells)"
    a = name(make_genotype(g.normal, g.normal, provenance=found))
    b = name(make_genotype(g.reduce, g.normal, provenance=found))
    assert a.startswith("searched ") and a.endswith(": advrush on digits, seed 0, epoch 4 "
                                                     "(C=4, 3 cells)")
    assert a != b  # two searched cells no longer both read "custom (C=4, 3 cells)"
    assert a == name(make_genotype(g.normal, g.normal, provenance=dict(found, seed=0)))
    assert name(make_genotype(g.reduce, g.normal)).startswith("custom ")
