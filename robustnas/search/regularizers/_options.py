"""Checked option parsing for regularisers (values come from YAML or ``--reg-opt`` strings)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from robustnas.config import parse_number
from robustnas.errors import UsageError


@dataclass(frozen=True)
class Option:
    """One option: its type (``float``, ``int``, ``bool``, ``str``), default and checks.

    ``choices`` restricts strings; ``check`` is a predicate with ``rule`` describing it for
    the error message. ``optional`` allows None (YAML ``null``).
    """

    kind: type
    default: Any
    rule: str = ""
    check: Callable[[Any], bool] | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False


def _convert(owner: str, name: str, value: Any, opt: Option) -> Any:
    where = f"regularizer {owner}: option {name}"
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if opt.optional:
            return None
        raise UsageError(f"{where} needs a value")
    if opt.kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise UsageError(f"{where}: expected true/false, got {value!r}")
    if opt.kind is str:
        text = str(value).strip()
        if opt.choices and text not in opt.choices:
            raise UsageError(f"{where}: expected one of {', '.join(opt.choices)}, got {value!r}")
        return text
    if isinstance(value, bool):
        raise UsageError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            number = parse_number(value)
        except UsageError:
            raise UsageError(f"{where}: expected a number (e.g. 0.5 or 6/255), "
                             f"got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise UsageError(f"{where}: expected a finite number, got {value!r}")
    if opt.kind is int:
        if not number.is_integer():
            raise UsageError(f"{where}: expected an integer, got {value!r}")
        return int(number)
    return number


def parse_options(owner: str, spec: Mapping[str, Option],
                  given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults updated with ``given``; unknown names or bad values raise UsageError."""
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise UsageError(f"regularizer {owner}: unknown option(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(spec))})")
    values = {name: opt.default for name, opt in spec.items()}
    for name, raw in given.items():
        opt = spec[name]
        value = _convert(owner, name, raw, opt)
        if value is not None and opt.check is not None and not opt.check(value):
            raise UsageError(f"regularizer {owner}: option {name} must be {opt.rule}, "
                             f"got {raw!r}")
        values[name] = value
    return values
