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
