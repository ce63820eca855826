"""The ``robustnas`` command line: parsing and printing only; the work is in the Python API."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from robustnas.errors import RobustnasError

# Each module defines ``register(subparsers)``; its parser's ``func(args) -> int`` runs it.
COMMANDS = ("search", "derive", "info", "retrain", "evaluate", "bench", "sample", "study", "table",
            "correlate")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2, no usage dump).

    ``type=int`` and ``type=float`` options are range-checked (see :mod:`robustnas.cli._types`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from robustnas.cli._types import register_checked_types

        register_checked_types(self)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    from robustnas import __version__

    parser = _Parser(prog="robustnas",
                     description="Differentiable, robustness-aware neural architecture search.")
    parser.add_argument("--version", action="version", version=f"robustnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"robustnas.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``robustnas`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RobustnasError as exc:
        print(f"robustnas {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"robustnas {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``robustnas info ... | head``): stop quietly like other Unix
        # tools; point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
