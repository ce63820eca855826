"""The resume policy of every command: which run to continue, with which settings, and how
a changed learning rate takes effect.

**Which run.** ``resume`` has one form everywhere (``--resume [PATH]``, and
``resume: bool | str | Path`` in the Python API): ``True`` (the bare flag) continues the run
in ``out``; a path names a run directory or a checkpoint file (:func:`resume_target`).

**Which settings.** A resumed run keeps every setting it was started with (``config.yaml`` /
the checkpoint's ``config``) except those given again explicitly (command line, ``--config``
file, Python overrides); each change is said on stderr (``resume: changing w_lr 0.025 ->
0.01``). Each setting declares on its config field (:func:`robustnas.options.option`)
whether it is :data:`~robustnas.options.FIXED` (it defines what the checkpoint means:
dataset, network size, seed, schedule...; a change is refused) or
:data:`~robustnas.options.CHANGEABLE`; :func:`merge_resumed` applies that one rule to search
and retraining alike. A run killed before its first checkpoint has nothing to contradict:
it starts from scratch with its ``config.yaml`` and the given settings.

**A changed learning rate** (:func:`apply_learning_rate`, called by both loops after they
load the optimiser and schedule state) keeps the schedule where it is and moves its ends:
with ``lr_t = floor + (base - floor)·f(t)``, the continuation uses ``floor' + (base' -
floor')·f(t)``, the learning rate a run started with the new settings would have now. Both
schedules robustnas uses have this form: cosine annealing (``f = (1 + cos(πt/T))/2``, floor
``eta_min``) and the step schedule (``f = γ^k`` after ``k`` milestones, floor 0), so the one
rule is exact for both, and the schedule's own next steps go on from there. The two rules
used before were each right for one loop only: recomputing the cosine closed form (search)
would put a step-decayed retraining back on a cosine curve, and rescaling the current value
by ``new/old`` around a fixed floor (retraining) could not move the search's floor
(``w_lr_min``). ``f(t)`` is read off the current value, so it needs no knowledge of the
schedule class, except when the schedule is flat (``base == floor``): then the cosine or
step closed form gives it.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from robustnas.config import read_yaml, resolve_config
from robustnas.errors import CheckpointError, UsageError
from robustnas.options import FIXED, options_of, settings_of_class, undeclared_resume_class

C = TypeVar("C")

Change = tuple[str, Any, Any]


# -- which run -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ResumeTarget:
    """What ``resume`` names: the checkpoint to continue and where the continuation writes.

    ``from_directory``: the checkpoint was found through a run directory (the bare flag or a
    directory path), so that a missing checkpoint means "killed before its first one: start
    from scratch" rather than an error.
    """

    checkpoint: Path
    out: Path
    from_directory: bool

    @property
    def elsewhere(self) -> bool:
        """Whether the continuation writes to another directory than the checkpoint's."""
        return self.out.resolve() != self.checkpoint.parent.resolve()


def resume_target(resume: bool | str | Path, *, out: str | Path | None,
                  default_out: str | Path, checkpoint_name: str) -> ResumeTarget:
    """The checkpoint ``resume`` names and the run directory to write to.

    ``True``: ``<out>/<checkpoint_name>`` (``out``: the given one, else ``default_out``). A
    path: a run directory means its ``checkpoint_name``, a file is taken as it is; the
    continuation writes to ``out`` when given, else to the checkpoint's directory.
    """
    if resume is True:
        run_dir = Path(out) if out else Path(default_out)
        return ResumeTarget(run_dir / checkpoint_name, run_dir, True)
    if not isinstance(resume, (str, Path)) or not str(resume):
        raise TypeError(f"resume must be True or a path, got {resume!r}")
    path = Path(resume)
    from_directory = path.is_dir()
    checkpoint = path / checkpoint_name if from_directory else path
    return ResumeTarget(checkpoint, Path(out) if out else checkpoint.parent, from_directory)


# -- which settings -------------------------------------------------------------------------
def explicit_settings(config_file: str | Path | None,
                      overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings a user gave explicitly: a YAML file's keys, then overrides (``None``
    values mean "not given")."""
    explicit = dict(read_yaml(config_file)) if config_file is not None else {}
    explicit.update({k.replace("-", "_"): v for k, v in (overrides or {}).items()
                     if v is not None})
    return explicit


def fixed_settings(cls: Any) -> frozenset[str]:
    """The settings of ``cls`` that cannot change on resume (declared on its fields)."""
    missing = undeclared_resume_class(cls)
    if missing:  # a programming error: every setting of a resumable command says
        raise TypeError(f"{cls.__name__} fields without a resume class: {', '.join(missing)}")
    return settings_of_class(cls, FIXED)


def merge_resumed(cls: type[C], saved: Mapping[str, Any], explicit: Mapping[str, Any], *,
                  checkpoint: bool = True, source: str = "the run",
                  ignore: Iterable[str] = ("out",)) -> tuple[C, list[Change]]:
    """``saved`` settings with ``explicit`` ones on top, resolved as ``cls``.

    Returns the config and the list of ``(name, saved value, new value)`` that differ
    (``ignore``: not listed). With ``checkpoint`` (there is a checkpoint whose meaning the
    settings fix), changing a :data:`~robustnas.options.FIXED` setting raises
    :class:`UsageError` naming ``source``. A saved setting computed from others
    (``derived_from``) is computed anew when one of those is given a new value and it is
    not given itself.
    """
    saved_config = resolve_config(cls, None, dict(saved))
    merged_values = {**saved, **explicit}
    merged = resolve_config(cls, None, merged_values)
    given = {key.replace("-", "_") for key in explicit}
    moved = {name for name in given
             if getattr(merged, name, None) != getattr(saved_config, name, None)}
    stale = [name for name, info in options_of(cls).items()
             if name not in given and set(info.derived_from) & moved]
    if stale:  # computed from a setting that changes: computed anew, not kept
        for name in stale:
            merged_values.pop(name, None)
        merged = resolve_config(cls, None, merged_values)
    skip = set(ignore)
    changes = [(f.name, getattr(saved_config, f.name), getattr(merged, f.name))
               for f in dataclasses.fields(merged)  # type: ignore[arg-type]
               if f.name not in skip
               and getattr(saved_config, f.name) != getattr(merged, f.name)]
    if checkpoint:
        fixed = fixed_settings(cls)
        blocked = [name for name, _, _ in changes if name in fixed]
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


def say_from_scratch(run_dir: str | Path, saved: Mapping[str, Any] | None) -> None:
    """Say that ``--resume`` found no checkpoint in ``run_dir`` and starts from scratch."""
    where = "its config.yaml" if saved is not None else "the given settings"
    print(f"resume: no checkpoint in {run_dir}: starting from scratch with {where}",
          file=sys.stderr, flush=True)


def saved_run_settings(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``config.yaml`` a run wrote when it started, or ``None`` if there is none
    (a run killed before its first checkpoint still has one)."""
    path = Path(run_dir) / "config.yaml"
    return dict(read_yaml(path)) if path.is_file() else None


# -- the loaded state ------------------------------------------------------------------------
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


def apply_learning_rate(optimizer: Any, scheduler: Any, lr: float,
                        lr_min: float | None = None) -> bool:
    """Give a restored optimiser and its schedule the base learning rate ``lr`` (and the
    floor ``lr_min``; ``None``: keep the schedule's), at the point the schedule has reached.

    The rule (see the module docstring): the schedule's progress ``f(t) = (lr_t - floor) /
    (base - floor)`` is kept and its ends are moved. Unchanged settings leave the state
    exactly as loaded (a bit-identical resume). Returns whether anything changed.
    ``scheduler`` may be ``None`` (a constant learning rate); a floor needs a schedule that
    has one (``eta_min``).
    """
    groups = optimizer.param_groups
    has_floor = scheduler is not None and hasattr(scheduler, "eta_min")
    if lr_min not in (None, 0, 0.0) and not has_floor:
        raise ValueError("this schedule has no floor (eta_min) to set")
    if scheduler is not None and getattr(scheduler, "base_lrs", None):
        bases = [float(b) for b in scheduler.base_lrs]
    else:
        bases = [float(g.get("initial_lr", g["lr"])) for g in groups]
    floor = float(scheduler.eta_min) if has_floor else 0.0
    new_floor = floor if lr_min is None else float(lr_min)
    if bases[0] == lr and new_floor == floor:
        return False
    # The first group's base becomes lr exactly; others keep their ratio to it.
    new_bases = [lr if b == bases[0] else (b * lr / bases[0] if bases[0] else lr)
                 for b in bases]
    for group, base, new_base in zip(groups, bases, new_bases):
        progress = ((float(group["lr"]) - floor) / (base - floor) if base != floor
                    else _closed_form_progress(scheduler))
        group["lr"] = new_floor + (new_base - new_floor) * progress
        if "initial_lr" in group:
            group["initial_lr"] = new_base
    if scheduler is not None:
        scheduler.base_lrs = list(new_bases)
        if has_floor:
            scheduler.eta_min = new_floor
        scheduler._last_lr = [group["lr"] for group in groups]
    return True


def _closed_form_progress(scheduler: Any) -> float:
    """``f(t)`` of a flat schedule (its value cannot tell it): the cosine or step closed
    form at the schedule's epoch, 1 (the start) for a schedule of another shape."""
    if scheduler is None:
        return 1.0
    t = int(getattr(scheduler, "last_epoch", 0))
    if hasattr(scheduler, "T_max") and hasattr(scheduler, "eta_min"):
        return (1 + math.cos(math.pi * t / scheduler.T_max)) / 2
    if hasattr(scheduler, "milestones") and hasattr(scheduler, "gamma"):
        steps = sorted(scheduler.milestones.elements()
                       if hasattr(scheduler.milestones, "elements") else scheduler.milestones)
        return float(scheduler.gamma) ** bisect_right(steps, t)
    return 1.0
