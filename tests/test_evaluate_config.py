"""``EvaluateConfig``: evaluate's settings as a config (--config eval.yaml, --set), its
generated command-line options, and ``evaluate(config=...)`` (issue 17, item 2)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from robustnas.cli import build_parser, main
from robustnas.config import resolve_config
from robustnas.errors import UsageError
from robustnas.evaluation import EvaluateConfig, evaluate
from robustnas.io import atomic_torch_save
from robustnas.options import option_info
from robustnas.space.darts.catalogue import GENOTYPES
from robustnas.space.darts.network import Network
from robustnas.space.models import model_payload

REPO = Path(__file__).resolve().parents[1]
# evaluate's arguments that are not settings: what to evaluate and where the report goes
COMMAND_ONLY = {"help", "checkpoints", "config", "set", "ensemble", "ensemble_combine", "out",
                "quiet", "model_card", "card_name"}


@pytest.fixture
def checkpoint(tmp_path) -> str:
    torch.manual_seed(0)
    net = Network(GENOTYPES.get("DARTS_V2"), C=4, num_classes=10, layers=2, in_channels=1,
                  mean=(0.3,), std=(0.37,)).eval()
    path = tmp_path / "net.pt"
    atomic_torch_save({"model": model_payload(net),
                       "dataset": {"name": "digits", "root": None, "options": {}}}, path)
    return str(path)


def _evaluate_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["evaluate"]


def test_every_setting_has_help_and_every_option_is_a_setting_or_the_command_s():
    fields = {f.name: f for f in dataclasses.fields(EvaluateConfig)}
    assert all(option_info(f).help for f in fields.values())
    dests = {a.dest for a in _evaluate_parser()._actions}
    assert dests - set(fields) == COMMAND_ONLY
    assert set(fields) - dests == {"hessian_iters", "dataset_options", "labels"}  # --set only


def test_flags_and_their_meaning_are_kept():
    parser = build_parser()
    args = parser.parse_args(["evaluate", "x.pt", "--no-sanity", "--measures", "--n", "5",
                              "--large-eps", "8/255", "--threads", "2"])
    assert (args.sanity, args.measures, args.n, args.large_eps, args.threads) == \
        (False, True, 5, "8/255", 2)
    args = parser.parse_args(["evaluate", "x.pt"])
    assert args.sanity is None and args.attacks is None  # not given: the config decides
    assert args.out == "report.json" and args.quiet is False


def test_yaml_then_set_then_flags(tmp_path):
    from robustnas.cli.evaluate import resolve_evaluate_config

    path = tmp_path / "eval.yaml"
    path.write_text("attacks: clean,pgd5\neps: [0.05, 8/255]\nn: 40\nsanity: false\n")
    args = build_parser().parse_args(["evaluate", "x.pt", "--config", str(path), "--set",
                                      "n=500", "--set", "restarts=2", "--seed", "7"])
    config = resolve_evaluate_config(args)
    assert (config.attacks, config.eps, config.n, config.sanity) == \
        ("clean,pgd5", ["0.05", "8/255"], 500, False)
    assert (config.restarts, config.seed) == (2, 7)
    args = build_parser().parse_args(["evaluate", "x.pt", "--config", str(path), "--n", "9",
                                      "--set", "n=500"])
    assert resolve_evaluate_config(args).n == 9  # a flag beats --set, as for search


@pytest.mark.parametrize("values,message", [
    ({"n": 0}, "n (--n) must be at least 1, got 0"),
    ({"batch_size": 0}, "batch_size (--batch-size) must be at least 1"),
    ({"hessian_iters": 0}, "hessian_iters must be at least 1"),
    ({"large_eps": "1e400"}, "option large_eps"),
    ({"large_eps": 2}, "large_eps must be in (0, 1]"),
    ({"nn": 5}, "did you mean 'n'"),
])
def test_bad_settings_are_one_clear_error(values, message):
    with pytest.raises(UsageError) as info:
        resolve_config(EvaluateConfig, None, values)
    assert message in str(info.value)


def test_the_example_config_resolves():
    config = resolve_config(EvaluateConfig, REPO / "experiments/configs/evaluate.yaml")
    assert config.eps == ["2/255", "4/255", "8/255"] and config.n == 1000


def test_cli_config_file_and_set(checkpoint, tmp_path, capsys):
    path = tmp_path / "eval.yaml"
    path.write_text("attacks: clean\neps: 0.1\nn: 8\nsanity: false\nbatch_size: 64\n")
    out = tmp_path / "rep" / "r.json"
    code = main(["evaluate", checkpoint, "--config", str(path), "--set", "n=500", "--quiet",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    settings = json.loads(out.read_text())["settings"]
    assert (settings["n"], settings["attacks"], settings["eps"]) == (500, ["clean"], ["0.1"])
    assert settings["sanity"] is False and settings["batch_size"] == 64
    path.write_text("attacks: clean\nout: elsewhere.json\n")  # --out is the command's
    assert main(["evaluate", checkpoint, "--config", str(path), "--out", str(out)]) == 2
    assert "unknown option 'out'" in capsys.readouterr().err


def test_api_takes_a_config_and_keywords_on_top(fit_digits, digits):
    model = fit_digits(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), steps=20)
    config = EvaluateConfig(attacks="clean,fgsm", eps="0.1", n=12, sanity=False)
    report = evaluate(model, config=config, data=digits, progress=False)
    assert report.settings["n"] == 12 and report.settings["attacks"] == ["clean", "fgsm"]
    report = evaluate(model, config=config, n=6, data=digits, progress=False)
    assert report.settings["n"] == 6 and config.n == 12  # the config is not changed
    with pytest.raises(TypeError, match="did you mean 'attacks'"):
        evaluate(model, atacks="clean", data=digits)
    with pytest.raises(UsageError, match="n \\(--n\\) must be at least 1"):
        evaluate(model, config=config, n=0, data=digits)
