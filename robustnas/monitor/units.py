"""Numbers for people: rates with the precision that means something."""

from __future__ import annotations


def format_rate(value: float, unit: str = "img/s") -> str:
    """Three significant digits, never in scientific notation: ``1234 img/s``,
    ``56.7 img/s``, ``4.32 img/s``, ``0.0812 img/s`` (a rate of a few images per second on a
    busy CPU is not rounded to ``0`` or ``4``, a fast GPU's is not shown to the unit's tenth).
    """
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        text = str(value)
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    else:
        text = f"{value:#.3g}".rstrip(".")
    return f"{text} {unit}" if unit else text
