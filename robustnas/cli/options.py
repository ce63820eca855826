"""Options shared by several commands, so that they are spelled the same everywhere.

``--threads N`` (search, retrain, evaluate, study), ``--resume [PATH]`` (search, retrain)
and ``--quiet`` (no progress bar; the old ``--no-progress`` spelling of ``evaluate`` is kept
as a hidden, deprecated alias).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from robustnas.options import THREADS_HELP  # not runtime: that imports PyTorch


def space_help(what: str = "search space") -> str:
    """Help for ``--space``: where the spaces are listed and which one is the default."""
    from robustnas.space.spaces import DEFAULT_SPACE

    return f"{what} (default: {DEFAULT_SPACE}; robustnas info --spaces lists them)"


def add_threads_option(parser: Any, dest: str = "threads") -> None:
    """Add ``--threads N`` (``None`` when not given) to ``parser`` or an argument group."""
    parser.add_argument("--threads", dest=dest, type=int, metavar="N", default=None,
                        help=THREADS_HELP)


def add_resume_option(parser: Any, checkpoint: str, elsewhere: bool) -> None:
    """Add ``--resume [PATH]``, the same on every command that continues a checkpoint: the
    bare flag continues the run in ``--out``, a PATH names a run directory or its
    ``checkpoint`` file (``False`` when not given, ``True`` for the bare flag).
    ``elsewhere``: the command can write the continuation to another ``--out``."""
    where = ("; the continuation is written to --out when given" if elsewhere
             else "; the run continues in that directory")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="PATH",
                        help=f"continue a run from its last checkpoint, with its saved "
                             f"settings except those given here (from scratch if it has no "
                             f"checkpoint yet): the run in --out, or PATH, a run directory "
                             f"or its {checkpoint}{where}")


class _Deprecated(argparse.Action):
    """A hidden alias that sets ``True`` on the new option's destination, with a note."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "",
                 **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"{parser.prog}: note: {option_string} is deprecated, use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, True)


def add_quiet_option(parser: Any) -> None:
    """Add ``--quiet`` (no progress bar) and the hidden deprecated ``--no-progress``."""
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-progress", dest="quiet", action=_Deprecated, new="--quiet")


def add_deprecated_int(parser: Any, old: str, dest: str) -> None:
    """A hidden ``old`` spelling of an integer option stored in ``dest`` (a note on use)."""

    class _Old(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                     values: Any, option_string: str | None = None) -> None:
            new = "--" + dest.replace("_", "-")
            print(f"{parser.prog}: note: {option_string} is deprecated, use {new}",
                  file=sys.stderr)
            setattr(namespace, dest, values)

    parser.add_argument(old, dest=dest, type=int, action=_Old, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
