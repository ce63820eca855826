"""Command-line options generated from a config dataclass's fields.

:func:`add_config_options` adds one option per field that has a flag (see
:func:`robustnas.options.cli_flag`), with the field's help, choices and metavar, storing the
value under the field's name and ``None`` when it is not given; :func:`config_overrides`
collects the given ones as overrides for :func:`robustnas.config.resolve_config`, which
converts and checks them like ``--set`` and YAML values. So a setting is declared once, on
its field, and its flag, ``--set name=...`` and its YAML key cannot disagree.

Flags follow the field's type: a ``bool`` field defaulting to false is a switch that sets
it (``--measures``), one whose flag starts with ``--no-`` a switch that clears it
(``--no-sanity``); an ``int`` is checked as an integer by argparse (``argument --seed: ...``);
other values are passed on as text and converted with the field (``8/255`` for numbers,
comma lists for lists), so their errors name the setting (``option large_eps: ...``). The
help shows the default unless it is unset (``None``, false, empty) or the help says it.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from robustnas.options import cli_flag, option_info


def _base_type(annotation: Any) -> Any:
    """``int`` for ``int | None``; the annotation itself otherwise."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return inner[0] if len(inner) == 1 else annotation
    return annotation


def _shown_default(field: dataclasses.Field) -> str | None:
    """The default as the help shows it, or ``None`` when there is nothing to show."""
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        value = field.default
    if value is None or value is False or value == "" or value == [] or value == {}:
        return None
    if value is True:
        return "true"
    return str(value)


def add_config_options(parser: Any, cls: type) -> None:
    """Add an option to ``parser`` (or an argument group) for each flagged field of ``cls``."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        info = option_info(field)
        flag = cli_flag(field.name, info)
        if flag is None:
            continue
        text = info.help.replace("%", "%%")  # argparse formats help with %
        shown = _shown_default(field)
        if shown is not None and "default" not in info.help.lower() \
                and not flag.startswith("--no-"):
            text += f" (default: {shown.replace('%', '%%')})"
        kwargs: dict[str, Any] = {"dest": field.name, "default": None, "help": text}
        kind = _base_type(hints[field.name])
        if kind is bool:
            kwargs.update(action="store_const", const=not flag.startswith("--no-"))
        else:
            if kind is int:
                kwargs["type"] = int
            if info.choices is not None:
                kwargs["choices"] = info.choices
            if info.metavar is not None:
                kwargs["metavar"] = info.metavar
        parser.add_argument(flag, **kwargs)


def config_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of :func:`add_config_options` that were given, by field name."""
    overrides = {}
    for field in dataclasses.fields(cls):
        if cli_flag(field.name, option_info(field)) is None:
            continue
        value = getattr(args, field.name, None)
        if value is not None:
            overrides[field.name] = value
    return overrides
