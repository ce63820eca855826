"""Options shared by several commands, so that they are spelled the same everywhere.

``--threads N`` (search, retrain, evaluate, study) and ``--quiet`` (no progress bar; the
old ``--no-progress`` spelling of ``evaluate`` is kept as a hidden, deprecated alias).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from robustnas.config import DEFAULT_MAX_THREADS  # not runtime: that imports PyTorch


def space_help(what: str = "search space") -> str:
    """Help for ``--space``: where the spaces are listed and which one is the default."""
    from robustnas.space.spaces import DEFAULT_SPACE

    return f"{what} (default: {DEFAULT_SPACE}; robustnas info --spaces lists them)"


THREADS_HELP = (f"CPU threads for PyTorch (default: OMP_NUM_THREADS if set, else "
                f"min(cores, {DEFAULT_MAX_THREADS}); use fewer on a shared machine)")


def add_threads_option(parser: Any, dest: str = "threads") -> None:
    """Add ``--threads N`` (``None`` when not given) to ``parser`` or an argument group."""
    parser.add_argument("--threads", dest=dest, type=int, metavar="N", default=None,
                        help=THREADS_HELP)


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
