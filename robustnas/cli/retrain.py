"""`robustnas retrain` (placeholder until its issue lands)."""

import argparse

from robustnas.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `retrain` subcommand."""
    p = sub.add_parser("retrain", help="not available yet")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    raise UsageError("'retrain' is not implemented yet")
