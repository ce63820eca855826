"""Settings of a resumed run: the run's saved settings, changed only where the user asked.

A resumed run keeps every setting it was started with (``config.yaml`` / the checkpoint's
``config``) except those given again explicitly (command line, ``--config`` file, Python
overrides); each change is said on stderr (``resume: changing w_lr 0.025 -> 0.01``), and a
change to a setting that fixes what the checkpoint means (dataset, network size, seed, ...)
is refused.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from robustnas.config import read_yaml, resolve_config
from robustnas.errors import CheckpointError, UsageError

C = TypeVar("C")

Change = tuple[str, Any, Any]


def explicit_settings(config_file: str | Path | None,
                      overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings a user gave explicitly: a YAML file's keys, then overrides (``None``
    values mean "not given")."""
    explicit = dict(read_yaml(config_file)) if config_file is not None else {}
    explicit.update({k.replace("-", "_"): v for k, v in (overrides or {}).items()
                     if v is not None})
    return explicit


def merge_resumed(cls: type[C], saved: Mapping[str, Any], explicit: Mapping[str, Any], *,
                  fixed: Iterable[str] = (), source: str = "the run",
                  ignore: Iterable[str] = ("out",)) -> tuple[C, list[Change]]:
    """``saved`` settings with ``explicit`` ones on top, resolved as ``cls``.

    Returns the config and the list of ``(name, saved value, new value)`` that differ
    (``ignore``: not listed). Changing a ``fixed`` setting raises :class:`UsageError`.
    """
    saved_config = resolve_config(cls, None, dict(saved))
    merged = resolve_config(cls, None, {**saved, **explicit})
    skip = set(ignore)
    changes = [(f.name, getattr(saved_config, f.name), getattr(merged, f.name))
               for f in dataclasses.fields(merged)  # type: ignore[arg-type]
               if f.name not in skip
               and getattr(saved_config, f.name) != getattr(merged, f.name)]
    blocked = [name for name, _, _ in changes if name in set(fixed)]
    if blocked:
        raise UsageError(f"cannot change {', '.join(blocked)} when resuming {source} "
                         f"(start a new run with a different --out instead)")
    return merged, changes


def describe_changes(changes: Iterable[Change]) -> list[str]:
    """``resume: changing NAME OLD -> NEW`` for each change."""
    return [f"resume: changing {name} {old} -> {new}" for name, old, new in changes]


def say_changes(changes: Iterable[Change],
                say: Callable[[str], None] | None = None) -> None:
    """Print :func:`describe_changes` (stderr by default)."""
    for line in describe_changes(changes):
        if say is None:
            print(line, file=sys.stderr, flush=True)
        else:
            say(line)


def saved_run_settings(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``config.yaml`` a run wrote when it started, or ``None`` if there is none
    (a run killed before its first checkpoint still has one)."""
    path = Path(run_dir) / "config.yaml"
    return dict(read_yaml(path)) if path.is_file() else None


def checkpoint_counters(state: Mapping[str, Any], *, epochs: int, steps_per_epoch: int,
                        source: str) -> tuple[int, int]:
    """The ``(epoch, step)`` a checkpoint continues from, checked against the run's config.

    A checkpoint is untrusted input: an epoch of 2**70 or a step of -5 would otherwise be
    taken as they are (a run that silently does nothing, or that replays batches). A run
    of this config writes whole numbers with ``0 <= epoch <= epochs`` and
    ``0 <= step <= steps_per_epoch`` (``step == steps_per_epoch`` when a signal came after
    an epoch's last batch), and step 0 once every epoch is done; anything else raises
    :class:`robustnas.errors.CheckpointError` naming the counter.
    """
    values = []
    for name, high in (("epoch", epochs), ("step", steps_per_epoch)):
        value = state.get(name)
        # bool is an int to Python, and int("1") or int(1.5) would hide a malformed file.
        if isinstance(value, bool) or not isinstance(value, int):
            raise CheckpointError(f"{source}: its {name} counter {value!r} is not a whole "
                                  f"number; the checkpoint is damaged or not from robustnas")
        if not 0 <= value <= high:
            unit = "epochs" if name == "epoch" else "steps per epoch"
            raise CheckpointError(f"{source}: its {name} counter {value} is out of range for "
                                  f"this run (0 to {high} {unit}); the checkpoint is damaged "
                                  f"or belongs to another configuration")
        values.append(value)
    epoch, step = values
    if epoch == epochs and step != 0:
        raise CheckpointError(f"{source}: its step counter {step} follows the last of its "
                              f"{epochs} epochs; the checkpoint is damaged")
    return epoch, step
