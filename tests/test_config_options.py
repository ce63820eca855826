"""Options declared once (issue 17, item 3): each setting of search, retrain and evaluate
carries its help, allowed values and flag on its config field; the commands' options are
generated from the fields (robustnas/cli/config_options.py), and ``--set`` and YAML values
are checked against the same declarations."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from robustnas.cli import build_parser, main
from robustnas.cli.config_options import flagged_fields
from robustnas.config import resolve_config
from robustnas.errors import UsageError
from robustnas.evaluation.config import EvaluateConfig
from robustnas.options import cli_flag, option_info
from robustnas.search.config import SearchConfig
from robustnas.train.config import RetrainConfig

CONFIGS = {"search": SearchConfig, "retrain": RetrainConfig, "evaluate": EvaluateConfig}

# Every flag each command had before its options were generated, with the config field it
# set (None: the command's own): none may be lost or change its meaning.
SEARCH_FLAGS = {
    "--config": None, "--regularizer": "regularizer", "--reg-opt": None,
    "--dataset": "dataset", "--data-root": "data_root", "--download": "download",
    "--epochs": "epochs", "--warmup-epochs": "warmup_epochs", "--batch-size": "batch_size",
    "--seed": "seed", "--order": "order", "--channels": "C", "--layers": "layers",
    "--space": "space", "--out": "out", "--device": "device", "--amp": "amp",
    "--channels-last": "channels_last", "--resume": None, "--overwrite": None,
    "--checkpoint-every": "checkpoint_every", "--set": None, "--threads": "threads",
    "--quiet": None, "--no-progress": None}
RETRAIN_FLAGS = {
    "--space": None, "--config": None, "--adversarial": "adversarial", "--eps": "eps",
    "--steps": "steps", "--step-size": "step_size", "--trades-beta": "trades_beta",
    "--attack-bn": "attack_bn", "--epochs": "epochs", "--batch-size": "batch_size",
    "--lr": "lr", "--lr-schedule": "lr_schedule", "--lr-milestones": "lr_milestones",
    "--lr-gamma": "lr_gamma", "--momentum": "momentum", "--weight-decay": "weight_decay",
    "--grad-clip": "grad_clip", "--channels": "C", "--layers": "layers",
    "--ensemble": "ensemble", "--ensemble-combine": "ensemble_combine",
    "--ensemble-init": "ensemble_init", "--auxiliary-weight": "auxiliary_weight",
    "--drop-path": "drop_path", "--cutout": "cutout", "--dataset": "dataset",
    "--data-root": "data_root", "--download": "download", "--eval-every": "eval_every",
    "--select-on": "select_on", "--val-n": "val_n", "--eval-n": "eval_n",
    "--eval-steps": "eval_steps", "--best-by": "best_by",
    "--checkpoint-every": "checkpoint_every", "--seed": "seed", "--device": "device",
    "--out": "out", "--overwrite": None, "--resume": None, "--amp": "amp",
    "--channels-last": "channels_last", "--sync-bn": "sync_bn", "--set": None,
    "--threads": "threads", "--quiet": None, "--no-progress": None}


def _command_parser(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _command_only(command: str) -> tuple[str, ...]:
    import importlib

    return importlib.import_module(f"robustnas.cli.{command}").COMMAND_ONLY


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("command", list(CONFIGS))
def test_every_field_has_help(command):
    missing = [f.name for f in dataclasses.fields(CONFIGS[command]) if not option_info(f).help]
    assert not missing, f"{CONFIGS[command].__name__} fields without help: {missing}"


@pytest.mark.parametrize("command", list(CONFIGS))
def test_every_option_is_a_field_s_or_the_command_s(command):
    cls = CONFIGS[command]
    infos = {f.name: option_info(f) for f in dataclasses.fields(cls)}
    own = set(_command_only(command))
    seen = set()
    for action in _command_parser(command)._actions:
        if action.dest == "help":
            continue
        seen.add(action.dest)
        if action.dest in own:
            continue
        assert action.dest in flagged_fields(cls), f"--{action.dest}: neither a field's nor " \
                                                   f"in {command}'s COMMAND_ONLY"
        assert action.option_strings == [cli_flag(action.dest, infos[action.dest])]
        assert action.default is None  # not given: YAML / --set / the saved run decide
    assert own <= seen, f"COMMAND_ONLY names options {command} lacks: {own - seen}"
    assert set(flagged_fields(cls)) <= seen


@pytest.mark.parametrize("command, flags", [("search", SEARCH_FLAGS), ("retrain", RETRAIN_FLAGS)])
def test_the_flags_of_before_are_kept(command, flags):
    actions = {s: a for a in _command_parser(command)._actions for s in a.option_strings}
    for flag, field in flags.items():
        assert flag in actions, f"{command} lost {flag}"
        if field is not None:
            assert actions[flag].dest == field, flag


@pytest.mark.parametrize("command", list(CONFIGS))
def test_help_is_generated_from_the_fields(command, capsys):
    text = "".join(_help(command, capsys).split())  # argparse wraps lines, also at hyphens
    cls = CONFIGS[command]
    for field in dataclasses.fields(cls):
        info = option_info(field)
        if cli_flag(field.name, info) is not None:
            assert "".join(info.help.split()) in text, field.name


def test_search_and_retrain_options_keep_their_types_and_defaults():
    parser = build_parser()
    args = parser.parse_args(["search", "--channels", "8", "--order", "2", "--amp",
                              "--threads", "2", "--checkpoint-every", "5"])
    assert (args.C, args.order, args.amp, args.threads, args.checkpoint_every) == \
        (8, 2, True, 2, 5)
    assert args.epochs is None and args.download is None and args.out is None
    args = parser.parse_args(["retrain", "DARTS_V2", "--channels", "8", "--eps", "8/255",
                              "--lr", "0.05", "--sync-bn", "--lr-milestones", "3,6",
                              "--ensemble-combine", "logits"])
    assert (args.genotype, args.C, args.eps, args.lr, args.sync_bn) == \
        ("DARTS_V2", 8, 8 / 255, 0.05, True)
    assert args.lr_milestones == "3,6" and args.ensemble_combine == "logits"
    assert args.epochs is None and args.amp is None and args.quiet is False


def test_flags_beat_set_and_the_config_file(tmp_path):
    from robustnas.cli.retrain import build_overrides as retrain_overrides
    from robustnas.cli.search import build_overrides as search_overrides

    parser = build_parser()
    args = parser.parse_args(["search", "--set", "epochs=3", "--epochs", "4", "--set",
                              "w_lr=0.1", "--reg-opt", "advrush.h=2"])
    assert search_overrides(args) == {"epochs": 4, "w_lr": 0.1,
                                      "regularizer_options": {"advrush": {"h": 2}}}
    args = parser.parse_args(["retrain", "G", "--set", "C=4", "--channels", "6"])
    assert retrain_overrides(args) == {"genotype": "G", "C": 6}
    path = tmp_path / "s.yaml"
    path.write_text("epochs: 9\nw_lr: 0.2\n")
    config = resolve_config(SearchConfig, path, {"epochs": 4})
    assert (config.epochs, config.w_lr) == (4, 0.2)


@pytest.mark.parametrize("cls, values, message", [
    (SearchConfig, {"epochs": 0}, "epochs (--epochs) must be at least 1, got 0"),
    (SearchConfig, {"C": 0}, "C (--channels) must be at least 1, got 0"),
    (SearchConfig, {"order": 3}, "order (--order) must be one of 1, 2, got 3"),
    (SearchConfig, {"w_lr": -1}, "w_lr must be at least 0, got -1"),  # --set only: no flag
    (SearchConfig, {"collapse_action": "halt"}, "collapse_action must be one of warn, stop"),
    (SearchConfig, {"arch_rl": 1}, "did you mean 'arch_lr'"),
    (RetrainConfig, {"eps": 8}, "eps (--eps) must be in [0, 1], got 8"),
    (RetrainConfig, {"lr_schedule": "linear"}, "lr_schedule (--lr-schedule) must be one of "
                                               "cosine, step"),
    (RetrainConfig, {"eval_batch_size": 0}, "eval_batch_size must be at least 1"),
    (RetrainConfig, {"channels": 4}, "did you mean 'C' (the setting of --channels)?"),
])
def test_set_and_yaml_values_are_checked_by_the_declarations(cls, values, message, tmp_path):
    with pytest.raises(UsageError) as info:
        resolve_config(cls, None, values)  # what --set does
    assert message in str(info.value) and "\n" not in str(info.value)
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(UsageError) as info:
        resolve_config(cls, path)
    assert message in str(info.value)
