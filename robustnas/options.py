"""A setting declared once: its default and what robustnas needs to know about it.

:func:`option` is a :func:`dataclasses.field` whose metadata (an :class:`OptionInfo`) says

* ``help``: one line for ``--help`` and for the error messages that name the setting;
* ``resume``: for the commands that continue a checkpoint (search, retrain), whether the
  setting may change on ``--resume``: :data:`FIXED` settings define what the checkpoint
  means (its data, network, seed, schedule, objective), so a continuation with another
  value would be another experiment and is refused; :data:`CHANGEABLE` ones do not
  (device, evaluation, checkpoints, and the optimiser settings the loop re-applies after
  loading its state). :mod:`robustnas.resume` applies this one rule to every command;
* ``choices``, ``low``, ``high``: the allowed values, checked by :func:`check_values`;
* ``flag``: the command-line spelling when it is not ``--name-with-dashes`` (``""``: no
  flag of its own, ``--set name=value`` only); ``metavar``: its argument's placeholder;
  ``group``: the heading it is listed under in ``--help`` (none: the command's options);
* ``derived_from``: the settings this one's default is computed from (the evaluation's PGD
  step from its ε and steps): a resumed run that is given a new value of one of them
  computes this one anew instead of keeping the saved value.

This module imports nothing heavy: ``--help`` reads it without importing PyTorch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from robustnas.errors import UsageError

#: Upper bound of the default number of CPU threads (robustnas.runtime.default_threads);
#: here, not in the runtime module, so that ``--help`` can quote it without importing PyTorch.
DEFAULT_MAX_THREADS = 4

#: Resume class of a setting that defines what a checkpoint means (refused if changed).
FIXED = "fixed"
#: Resume class of a setting that a continued run may change.
CHANGEABLE = "changeable"
RESUME_CLASSES = (FIXED, CHANGEABLE)

#: The key of :class:`OptionInfo` in a field's metadata.
METADATA_KEY = "robustnas"

THREADS_HELP = (f"CPU threads for PyTorch (default: OMP_NUM_THREADS if set, else "
                f"min(cores, {DEFAULT_MAX_THREADS}); use fewer on a shared machine)")


@dataclasses.dataclass(frozen=True)
class OptionInfo:
    """What :func:`option` records about one setting (see the module docstring)."""

    help: str = ""
    resume: str | None = None
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    flag: str | None = None
    metavar: str | None = None
    group: str | None = None
    derived_from: tuple[str, ...] = ()


def option(default: Any = dataclasses.MISSING, *,
           default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
           help: str = "", resume: str | None = None,
           choices: Sequence[Any] | None = None, low: float | None = None,
           high: float | None = None, flag: str | None = None, metavar: str | None = None,
           group: str | None = None, derived_from: Sequence[str] = ()) -> Any:
    """A dataclass field with its :class:`OptionInfo`; ``default_factory`` for mutable
    defaults (lists, dicts), as with :func:`dataclasses.field`."""
    if resume is not None and resume not in RESUME_CLASSES:
        raise ValueError(f"resume must be one of {RESUME_CLASSES}, got {resume!r}")
    info = OptionInfo(help=help, resume=resume,
                      choices=tuple(choices) if choices is not None else None,
                      low=low, high=high, flag=flag, metavar=metavar, group=group,
                      derived_from=tuple(derived_from))
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={METADATA_KEY: info})


def option_info(field: dataclasses.Field) -> OptionInfo:
    """The field's :class:`OptionInfo` (an empty one for a plain field)."""
    return field.metadata.get(METADATA_KEY, OptionInfo())


def options_of(cls: Any) -> dict[str, OptionInfo]:
    """``{field name: OptionInfo}`` of a config dataclass (or instance), in field order."""
    return {f.name: option_info(f) for f in dataclasses.fields(cls)}


def default_of(cls: Any, name: str) -> Any:
    """The default value of field ``name`` of the dataclass ``cls``."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def settings_of_class(cls: Any, resume: str) -> frozenset[str]:
    """The names of the settings of ``cls`` whose resume class is ``resume``."""
    if resume not in RESUME_CLASSES:
        raise ValueError(f"resume must be one of {RESUME_CLASSES}, got {resume!r}")
    return frozenset(name for name, info in options_of(cls).items() if info.resume == resume)


def undeclared_resume_class(cls: Any) -> list[str]:
    """The fields of ``cls`` that declare no resume class (a resumable config has none)."""
    return [name for name, info in options_of(cls).items() if info.resume is None]


def cli_flag(name: str, info: OptionInfo) -> str | None:
    """The command-line flag of a setting: ``--name-with-dashes`` unless the option names
    another one; ``None`` when it has none (``--set`` only)."""
    if info.flag == "":
        return None
    return info.flag or "--" + name.replace("_", "-")


def check_values(config: Any) -> None:
    """Refuse a value outside the ``choices`` or ``[low, high]`` its option declares.

    ``None`` ("not set", e.g. ``n`` meaning every image) is always allowed. The message
    names the setting and, when it has one, its flag: ``n (--n) must be at least 1, got 0``,
    ``eps (--eps) must be in [0, 1], got 8``.
    """
    for name, info in options_of(config).items():
        value = getattr(config, name)
        if value is None or isinstance(value, bool):
            continue
        flag = cli_flag(name, info)
        what = f"{name} ({flag})" if flag else name
        if info.choices is not None and value not in info.choices:
            raise UsageError(f"{what} must be one of {', '.join(map(str, info.choices))}, "
                             f"got {value!r}")
        if not isinstance(value, (int, float)):
            continue
        if info.low is not None and info.high is not None \
                and not info.low <= value <= info.high:
            raise UsageError(f"{what} must be in [{info.low:g}, {info.high:g}], got {value:g}")
        if info.low is not None and value < info.low:
            raise UsageError(f"{what} must be at least {info.low:g}, got {value}")
        if info.high is not None and value > info.high:
            raise UsageError(f"{what} must be at most {info.high:g}, got {value}")
