"""Command-line options generated from a config dataclass's fields.

:func:`add_config_options` adds one option per field that has a flag (see
:func:`robustnas.options.cli_flag`), with the field's help, choices and metavar, storing the
value under the field's name and ``None`` when it is not given; :func:`config_overrides`
collects the given ones as overrides for :func:`robustnas.config.resolve_config`, which
converts and checks them like ``--set`` and YAML values. So a setting is declared once, on
its field, and its flag, ``--set name=...`` and its YAML key cannot disagree.

Flags follow the field's type: a ``bool`` field defaulting to false is a switch that sets
it (``--measures``), one whose flag starts with ``--no-`` a switch that clears it
(``--no-sanity``); an ``int`` is checked as an integer by argparse (``argument --seed: ...``),
and so is a ``float`` (``8/255`` too) where the command asks for it (``parse_numbers``, as
``retrain`` always has: ``argument --lr: ...``); other values are passed on as text and
converted with the field (``8/255`` for numbers, comma lists for lists), so their errors name
the setting (``option large_eps: ...``). The help shows the default unless it is unset
(``None``, false, empty) or the help says it. A field's ``group`` lists it under that
heading of ``--help``.

A command's other arguments (what it works on, where it writes, ``--config``, ``--set``...)
are its own and declared by the command, which lists their destinations in its
``COMMAND_ONLY``; a test checks that every option is one or the other.
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


def flagged_fields(cls: type) -> list[str]:
    """The fields of ``cls`` that have a command-line flag, in field order."""
    return [f.name for f in dataclasses.fields(cls)
            if cli_flag(f.name, option_info(f)) is not None]


def add_config_options(parser: Any, cls: type, *,
                       parse_numbers: bool = False) -> dict[str, Any]:
    """Add an option to ``parser`` (or an argument group) for each flagged field of ``cls``.

    ``parse_numbers``: ``float`` fields are parsed by argparse too. Returns the argument
    groups of the fields' ``group`` headings (created in the order fields first name them),
    so that the command can add its own options under one of them.
    """
    groups: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        info = option_info(field)
        flag = cli_flag(field.name, info)
        if flag is None:
            continue
        target = parser
        if info.group is not None:
            if info.group not in groups:
                groups[info.group] = parser.add_argument_group(info.group)
            target = groups[info.group]
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
            if kind is int or (kind is float and parse_numbers):
                kwargs["type"] = kind  # the parser's checked int / float (cli._types)
            if info.choices is not None:
                kwargs["choices"] = info.choices
            if info.metavar is not None:
                kwargs["metavar"] = info.metavar
        target.add_argument(flag, **kwargs)
    return groups


def config_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of :func:`add_config_options` that were given, by field name."""
    overrides = {}
    for name in flagged_fields(cls):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return overrides
