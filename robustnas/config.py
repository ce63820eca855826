"""Typed configs: dataclass defaults ← YAML file ← command-line overrides.

Each command (search, retrain, ...) has a dataclass of options. :func:`resolve_config`
applies a YAML file and then explicit overrides, checks names and types, and returns the
resolved dataclass, which runs save next to their outputs (``config.yaml``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import yaml

from robustnas.errors import UsageError

C = TypeVar("C")


def parse_number(text: str) -> float:
    """Parse ``"0.03"``, ``"8/255"`` or ``"8"`` into a float; raise UsageError otherwise."""
    try:
        return float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"malformed number {text!r} (examples: 0.03, 8/255)") from None


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert a YAML/CLI value to the field's annotated type, with a clear error."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
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
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"option {name}: expected an integer, got {value!r}") from None
        if not as_float.is_integer():
            raise UsageError(f"option {name}: expected an integer, got {value!r}")
        return int(as_float)
    if annotation is float:
        if isinstance(value, bool):
            raise UsageError(f"option {name}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        return parse_number(value) if isinstance(value, str) else _fail_number(name, value)
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
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"config file {path} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of option: value")
    return data


def resolve_config(cls: type[C], file: str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None) -> C:
    """Build ``cls`` from its defaults, then the YAML ``file``, then ``overrides``.

    ``None`` values in ``overrides`` mean "not given" and are skipped. Unknown keys raise
    :class:`UsageError` naming the key.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
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
                known = ", ".join(sorted(fields))
                raise UsageError(f"unknown option {key!r} in {source} (known: {known})")
            values[name] = _coerce(name, value, hints[name])
    config = cls(**values)
    check = getattr(config, "validate", None)
    if callable(check):
        check()
    return config


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
