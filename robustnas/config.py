"""Typed configs: dataclass defaults ← YAML file ← command-line overrides.

Each command (search, retrain, ...) has a dataclass of options. :func:`resolve_config`
applies a YAML file and then explicit overrides, checks names and types, and returns the
resolved dataclass, which runs save next to their outputs (``config.yaml``).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import yaml

from robustnas.errors import UsageError
from robustnas.options import (
    DEFAULT_MAX_THREADS,  # noqa: F401  (re-exported)
    cli_flag,
    option_info,
)

C = TypeVar("C")


#: Range of integer options: what a 64-bit signed integer holds (RNG seeds, counts, sizes).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
#: Magnitude limit of number options: the largest finite double.
FLOAT_MAX = sys.float_info.max
#: Largest config file read (a config is a few hundred bytes of options).
CONFIG_MAX_BYTES = 1 << 20


def parse_number(text: str, name: str | None = None) -> float:
    """Parse ``"0.03"``, ``"8/255"`` or ``"8"`` into a finite float; raise UsageError otherwise.

    ``name`` (an option name) is put in the message. NaN, infinities and values beyond
    ±1.8e308 are rejected.
    """
    what = f"option {name}: " if name else ""
    try:
        value = float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{what}malformed number {text!r} (examples: 0.03, 8/255; "
                         f"NaN and infinity are not allowed)") from None
    except OverflowError:
        value = math.inf
    return check_finite(name, value, text)


def check_finite(name: str | None, value: float, shown: Any = None) -> float:
    """``value`` if it is a finite number, else a UsageError naming ``name`` and the range."""
    if not math.isfinite(value):
        what = f"option {name}: " if name else ""
        raise UsageError(f"{what}{_shown(value if shown is None else shown)} is out of range "
                         f"(must be a finite number between -{FLOAT_MAX:.3g} and "
                         f"{FLOAT_MAX:.3g})")
    return value


def check_int_range(name: str | None, value: int) -> int:
    """``value`` if it fits a 64-bit signed integer, else a UsageError naming the range."""
    if not INT_MIN <= value <= INT_MAX:
        what = f"option {name}: " if name else ""
        raise UsageError(f"{what}{_shown(value)} is out of range (must be an integer between "
                         f"{INT_MIN} and {INT_MAX})")
    return value


def _shown(value: Any) -> str:
    """``repr(value)``, shortened for huge numbers so the message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert a YAML/CLI value to the field's annotated type, with a clear error."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        # ``str | list[str]`` (a comma list or a YAML list): the first type that takes the
        # value wins, and when none does the message is the first type's.
        refusals: list[UsageError] = []
        for kind in inner:
            try:
                return _coerce(name, value, kind)
            except UsageError as exc:
                refusals.append(exc)
        raise refusals[0]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0",
                                                       "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise UsageError(f"option {name}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise UsageError(f"option {name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return check_int_range(name, value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return check_int_range(name, int(value.strip()))
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"option {name}: expected an integer, got {value!r}") from None
        except OverflowError:
            as_float = math.inf
        if math.isfinite(as_float) and as_float.is_integer():
            return check_int_range(name, int(as_float))
        if math.isinf(as_float):
            raise UsageError(f"option {name}: {_shown(value)} is out of range (must be an "
                             f"integer between {INT_MIN} and {INT_MAX})")
        raise UsageError(f"option {name}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise UsageError(f"option {name}: expected a number, got {value!r}")
        if isinstance(value, int):
            try:
                return check_finite(name, float(value), value)
            except OverflowError:
                return check_finite(name, math.inf, value)
        if isinstance(value, float):
            return check_finite(name, value)
        return parse_number(value, name) if isinstance(value, str) else _fail_number(name, value)
    if annotation is str:
        if isinstance(value, (dict, list)):
            raise UsageError(f"option {name}: expected a string, got {value!r}")
        return str(value)
    if origin in (list, tuple):
        items = value
        if isinstance(value, str):
            items = [v for v in value.split(",") if v.strip()]
        if not isinstance(items, (list, tuple)):
            raise UsageError(f"option {name}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        converted = [_coerce(name, v, inner) if inner is not Any else v for v in items]
        return tuple(converted) if origin is tuple else converted
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise UsageError(f"option {name}: expected a mapping, got {value!r}")
        return dict(value)
    return value


def _fail_number(name: str, value: Any) -> float:
    raise UsageError(f"option {name}: expected a number, got {value!r}")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with one clear error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(raw) > CONFIG_MAX_BYTES:
        raise UsageError(f"config file {path} is {len(raw)} bytes; a config file is at most "
                         f"{CONFIG_MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"config file {path} is not UTF-8 text (byte {exc.start} is "
                         f"0x{raw[exc.start]:02x}); is it a binary file?") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"config file {path} is not valid YAML{where}") from None
    except RecursionError:
        raise UsageError(f"config file {path} is nested too deeply") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of option: value")
    return data


def resolve_config(cls: type[C], file: str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None) -> C:
    """Build ``cls`` from its defaults, then the YAML ``file``, then ``overrides``.

    ``None`` values in ``overrides`` mean "not given" and are skipped. Unknown keys raise
    :class:`UsageError` naming the key and the closest setting, also when the key is a
    setting's flag spelt as a key (``channels`` for ``C``, whose flag is ``--channels``).
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    flags = {name: cli_flag(name, option_info(field)) for name, field in fields.items()}
    by_flag = {flag.lstrip("-").replace("-", "_"): name for name, flag in flags.items()
               if flag is not None and flag.lstrip("-").replace("-", "_") != name}
    values: dict[str, Any] = {}
    sources: list[tuple[str, Mapping[str, Any]]] = []
    if file is not None:
        sources.append((str(file), read_yaml(file)))
    if overrides:
        sources.append(("command line", {k: v for k, v in overrides.items() if v is not None}))
    for source, mapping in sources:
        for key, value in mapping.items():
            name = key.replace("-", "_")
            if name not in fields:
                raise UsageError(unknown_option_message(key, source, fields, by_flag))
            values[name] = _coerce(name, value, hints[name])
    config = cls(**values)
    check = getattr(config, "validate", None)
    if callable(check):
        check()
    return config


def unknown_option_message(key: str, source: str, known: Any,
                           by_flag: Mapping[str, str] | None = None) -> str:
    """``unknown option 'arch_rl' in command line; did you mean 'arch_lr'? (known: ...)``.

    ``by_flag``: setting names by their flag's spelling as a key, where the two differ
    (``{"channels": "C"}``), so that a flag's name given as a key points to its setting.
    """
    import difflib

    names = sorted(known)
    spelt = key.replace("-", "_").lstrip("_")
    if by_flag and spelt in by_flag:
        return (f"unknown option {key!r} in {source}; did you mean {by_flag[spelt]!r} (the "
                f"setting of --{spelt.replace('_', '-')})? (known: {', '.join(names)})")
    close = difflib.get_close_matches(key.replace("-", "_"), names, n=1, cutoff=0.6)
    if not close:  # a prefix or a part of a name: "lr" -> w_lr, arch_lr ...
        close = [n for n in names if key.replace("-", "_") in n][:3]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown option {key!r} in {source}{hint} (known: {', '.join(names)})"


def parse_set_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """Parse ``--set key=value`` pairs; values are read as YAML scalars."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            result[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            result[key.strip()] = raw
    return result


def config_to_dict(config: Any) -> dict[str, Any]:
    """A YAML-friendly dict of a config dataclass."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from robustnas.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))
