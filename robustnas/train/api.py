"""Python API of ``robustnas retrain``: :func:`retrain` (usable from a notebook)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from robustnas.config import config_to_dict, read_yaml, resolve_config
from robustnas.engine import Callback
from robustnas.errors import UsageError
from robustnas.resume import merge_resumed, saved_run_settings, say_changes
from robustnas.rundir import RunDirOccupied, holds_run, occupied_message
from robustnas.train.config import RESUMABLE_KEYS, RetrainConfig
from robustnas.train.result import RetrainResult
from robustnas.train.state import LAST_NAME, load_train_state, resolve_checkpoint_path
from robustnas.train.trainer import Trainer


def retrain(config: RetrainConfig | None = None, *, config_file: str | Path | None = None,
            overrides: Mapping[str, Any] | None = None, resume: bool | str | Path = False,
            show_progress: bool = True,
            callbacks: Sequence[Callback] = (),
            overwrite: bool = False) -> RetrainResult:
    """Train a genotype's network; the Python API of ``robustnas retrain``.

    Pass either a :class:`RetrainConfig`, or a YAML ``config_file`` and/or ``overrides``
    (precedence: dataclass and objective defaults < YAML < overrides), e.g.::

        retrain(overrides={"genotype": "ADVRUSH", "adversarial": "pgd", "epochs": 10})

    ``resume``: ``True`` continues ``<out>/last.pt``; a path (a run directory or a
    checkpoint file) continues that checkpoint, writing to its directory unless ``out`` is
    given. The checkpoint's configuration is used; only the options in
    :data:`robustnas.train.config.RESUMABLE_KEYS` (device, evaluation and checkpoint
    settings, ...) may be changed, anything else raises :class:`UsageError`; each change
    is printed (``resume: changing eval_n 1000 -> 500``). When there is no checkpoint yet
    (``resume`` is ``True`` or a run directory), the run starts from scratch with the
    settings of the directory's ``config.yaml`` (if any) and the given ones, saying so.

    A new run refuses an ``out`` that already holds a run (``RunDirOccupied``) unless
    ``overwrite``, which deletes the old run's files first.

    Raises :class:`robustnas.train.trainer.TrainingInterrupted` when stopped by
    SIGINT/SIGTERM (after saving ``last.pt``).
    """
    state = None
    if resume:
        state, config = _resumed(config, config_file, overrides, resume)
        overwrite = state is None  # no checkpoint: clear what the killed run left
    elif config is None:
        config = resolve_config(RetrainConfig, config_file, overrides)
        _check_best_by_needs_evaluation(config, config_file, overrides)
        config = _space_network_sizes(config, config_file, overrides)
    else:
        config.validate()
    trainer = Trainer(config, resume_state=state, show_progress=show_progress,
                      callbacks=callbacks, overwrite=overwrite)
    return trainer.run()


def _space_network_sizes(config: RetrainConfig, config_file: str | Path | None,
                         overrides: Mapping[str, Any] | None) -> RetrainConfig:
    """A genotype of a space with standard network sizes (NAS-Bench-201: C 16, 15 cells) is
    built at those sizes unless the file or the command line sets ``C`` or ``layers``."""
    if not config.genotype or config.ensemble:
        return config
    explicit = set(read_yaml(config_file)) if config_file is not None else set()
    explicit |= {k.replace("-", "_") for k, v in (overrides or {}).items() if v is not None}
    if explicit & {"C", "layers"}:
        return config
    from robustnas.space.models import is_handcrafted_spec
    from robustnas.space.spaces import get_space, spec_space

    if is_handcrafted_spec(config.genotype):
        return config
    sizes = get_space(spec_space(config.genotype)).network_sizes
    if sizes is None or sizes == (config.C, config.layers):
        return config
    print(f"retrain: {spec_space(config.genotype)} genotype: building its standard network "
          f"(C {sizes[0]}, {sizes[1]} cells; set --channels/--layers to change)", file=sys.stderr)
    return dataclasses.replace(config, C=sizes[0], layers=sizes[1])


def _check_best_by_needs_evaluation(config: RetrainConfig, config_file: str | Path | None,
                                    overrides: Mapping[str, Any] | None) -> None:
    """Refuse an explicit ``best_by`` together with ``eval_every`` 0 (no best.pt could ever be
    chosen). With only ``eval_every`` 0 the run trains without best.pt, saying so."""
    explicit = set(read_yaml(config_file)) if config_file is not None else set()
    explicit |= {k.replace("-", "_") for k, v in (overrides or {}).items() if v is not None}
    if config.eval_every == 0 and "best_by" in explicit:
        raise UsageError(f"best_by {config.best_by} chooses best.pt by the held-out "
                         f"evaluation, but eval_every 0 turns it off: set eval_every >= 1 or "
                         f"drop best_by (with eval_every 0 only last.pt is written)")


def _resumed(config: RetrainConfig | None, config_file: str | Path | None,
             overrides: Mapping[str, Any] | None,
             resume: bool | str | Path) -> tuple[dict[str, Any] | None, RetrainConfig]:
    """Load the checkpoint to continue and merge the requested options into its config
    (state ``None``: no checkpoint yet, start from scratch)."""
    if config is not None:
        explicit = config_to_dict(config)
    else:
        explicit = dict(read_yaml(config_file)) if config_file is not None else {}
        explicit.update({k.replace("-", "_"): v for k, v in (overrides or {}).items()
                         if v is not None})
    if resume is True:
        out = explicit.get("out") or RetrainConfig.__dataclass_fields__["out"].default
        path = Path(out) / LAST_NAME
    else:
        path = resolve_checkpoint_path(resume)
        explicit.setdefault("out", str(path.parent))
        out = Path(explicit["out"])
        if out.resolve() != path.parent.resolve() and holds_run(out):
            raise RunDirOccupied(occupied_message(out))  # continuing elsewhere must not mix
    if not path.exists() and (resume is True or Path(resume).is_dir()):
        return None, _from_scratch(path.parent, explicit)
    state = load_train_state(path)
    saved_dict = dict(state["config"])
    saved = resolve_config(RetrainConfig, None, saved_dict)
    requested = explicit.pop("genotype", "")
    if requested:
        _check_same_genotype(str(requested), state, path)
    merged = {**saved_dict, **explicit}
    if ({"eval_steps", "eval_eps"} & explicit.keys()) and "eval_step_size" not in explicit:
        merged.pop("eval_step_size", None)  # re-derive from the new evaluation settings
    resumed = resolve_config(RetrainConfig, None, merged)
    changed = sorted(k for k in explicit if k not in RESUMABLE_KEYS
                     and getattr(resumed, k, None) != getattr(saved, k, None))
    if changed:
        raise UsageError(f"cannot change {', '.join(changed)} when resuming {path} "
                         f"(start a new run with a different --out instead)")
    say_changes((f, getattr(saved, f), getattr(resumed, f)) for f in saved_dict
                if f != "out" and getattr(resumed, f, None) != getattr(saved, f, None))
    return state, resumed


def _from_scratch(run_dir: Path, explicit: dict[str, Any]) -> RetrainConfig:
    """``--resume`` of a run killed before its first checkpoint: its saved settings (if
    any) with the given ones on top."""
    saved = saved_run_settings(run_dir)
    where = "its config.yaml" if saved is not None else "the given settings"
    print(f"resume: no checkpoint in {run_dir}: starting from scratch with {where}",
          file=sys.stderr, flush=True)
    config, changes = merge_resumed(RetrainConfig, saved or {}, explicit)
    if saved is not None:
        say_changes(changes)
    return config


def _check_same_genotype(spec: str, state: dict[str, Any], path: Path) -> None:
    """A genotype named again on resume must be the checkpoint's (which is what is used)."""
    from robustnas.space.models import check_same_architecture

    check_same_architecture(spec, state["model"], str(path))
