"""Every command and sub-command answers --help (issue 12, item 7)."""

from __future__ import annotations

import argparse

import pytest

from robustnas.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every (nested) sub-command path of ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _commands(sub, prefix + (name,))


def _all_paths():
    from robustnas.benchmarks import BENCHMARKS

    paths = list(_commands(build_parser()))
    paths += [("bench", name) for name in BENCHMARKS]
    return paths


@pytest.mark.parametrize("path", _all_paths(), ids=" ".join)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_answers_help(path, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*path, flag])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: robustnas " + " ".join(path))


def test_bare_bench_prints_usage(capsys):
    assert main(["bench"]) == 0
    assert "usage: robustnas bench" in capsys.readouterr().out


def _help(path, capsys) -> str:
    with pytest.raises(SystemExit):
        main([*path, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("path", _all_paths(), ids=" ".join)
def test_one_spelling_per_option(path, capsys):
    text = _help(path, capsys)
    assert "--no-progress" not in text and "--repeats" not in text


def test_old_spellings_are_hidden_aliases(capsys):
    parser = build_parser()
    args = parser.parse_args(["evaluate", "x.pt", "--no-progress"])
    assert args.quiet is True
    assert "deprecated, use --quiet" in capsys.readouterr().err
    assert parser.parse_args(["evaluate", "x.pt"]).quiet is False
    for command in (["search"], ["retrain", "DARTS_V2"]):
        assert parser.parse_args([*command, "--quiet"]).quiet is True
    from robustnas.benchmarks import train
    from robustnas.cli import _Parser

    bench = _Parser(prog="robustnas bench train")
    train.add_arguments(bench)
    assert bench.parse_args([]).rounds == 3
    assert bench.parse_args(["--repeats", "5"]).rounds == 5
    assert bench.parse_args(["--rounds", "4"]).rounds == 4
