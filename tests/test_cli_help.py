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
    from robustnas.cli import _Parser
    from robustnas.cli.bench_options import train_arguments

    bench = _Parser(prog="robustnas bench train")
    train_arguments(bench)
    assert bench.parse_args([]).rounds == 3
    assert bench.parse_args(["--repeats", "5"]).rounds == 5
    assert bench.parse_args(["--rounds", "4"]).rounds == 4


def test_help_and_table_queries_do_not_import_torch(tmp_path):
    """Every command starts by building the whole parser: importing PyTorch there cost 2-4 s
    on each start (--help included), and the table readers need no PyTorch at all."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    cell = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "meta.json").write_text(json.dumps(
        {"ids": {"7": {"nb201-string": cell, "isomorph": "7"}}}))
    (tmp_path / "cifar10" / "clean_accuracy.json").write_text(json.dumps(
        {"cifar10": {"clean": {"accuracy": {"7": 0.5}}}}))
    code = ("import contextlib, io, sys\n"
            "from robustnas.cli import build_parser, main\n"
            "build_parser()\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['table', 'query', '7', '--bench-root', {str(tmp_path)!r}, "
            "'--ranks']) == 0\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'scipy') if m in sys.modules))\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(root)),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
