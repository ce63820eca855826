"""Checked argparse types: every ``type=int`` option of every subcommand goes through here.

:class:`robustnas.cli._Parser` registers :func:`checked_int` in place of ``int`` and
:func:`checked_float` in place of ``float``, so an out-of-range number (``--seed 2**70``,
``--batch-size 1e400``) is a one-line usage error naming the option, never an overflow
traceback later on.
"""

from __future__ import annotations

import argparse
import math

from robustnas.config import FLOAT_MAX, INT_MAX, INT_MIN
from robustnas.errors import UsageError


def checked_int(text: str) -> int:
    """An integer that fits in 64 bits (what RNG seeds and tensor sizes accept)."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not INT_MIN <= value <= INT_MAX:
        shown = text if len(text) <= 30 else f"{text[:20]}... ({len(text)} digits)"
        raise argparse.ArgumentTypeError(f"{shown} is out of range (must be an integer "
                                         f"between {INT_MIN} and {INT_MAX})")
    return value


def checked_float(text: str) -> float:
    """A finite number (also ``8/255``); NaN, infinities and overflow are refused."""
    from robustnas.config import parse_number

    try:
        value = parse_number(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not math.isfinite(value):  # pragma: no cover - parse_number already refuses these
        raise argparse.ArgumentTypeError(f"{text!r} is out of range (|x| <= {FLOAT_MAX:.3g})")
    return value


def register_checked_types(parser: argparse.ArgumentParser) -> None:
    """Make ``type=int`` / ``type=float`` options of ``parser`` use the checked parsers."""
    parser.register("type", int, checked_int)
    parser.register("type", float, checked_float)
