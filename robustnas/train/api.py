"""Python API of ``robustnas retrain``: :func:`retrain` (usable from a notebook)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from robustnas.config import config_to_dict, resolve_config
from robustnas.engine import Callback
from robustnas.errors import UsageError
from robustnas.options import default_of
from robustnas.resume import (
    explicit_settings,
    merge_resumed,
    resume_target,
    saved_run_settings,
    say_changes,
    say_from_scratch,
)
from robustnas.rundir import RunDirOccupied, holds_run, occupied_message
from robustnas.train.config import RetrainConfig
from robustnas.train.result import RetrainResult
from robustnas.train.state import LAST_NAME, load_train_state
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
    given. The checkpoint's configuration is used; only the options declared changeable on
    :class:`RetrainConfig` (:data:`robustnas.train.config.RESUMABLE_KEYS`: device,
    evaluation and checkpoint settings, the learning rate, ...) may be changed, anything
    else raises :class:`UsageError` (the policy of :mod:`robustnas.resume`, the same as a
    search's); each change is printed (``resume: changing eval_n 1000 -> 500``). When
    there is no checkpoint yet (``resume`` is ``True`` or a run directory), the run starts
    from scratch with the settings of the directory's ``config.yaml`` (if any) and the
    given ones, saying so.

    A new run refuses an ``out`` that already holds a run (``RunDirOccupied``) unless
    ``overwrite``, which deletes the old run's files first.

    Raises :class:`robustnas.train.trainer.TrainingInterrupted` when stopped by
    SIGINT/SIGTERM (after saving ``last.pt``).
    """
    state = None
    if resume:
        explicit = (config_to_dict(config) if config is not None
                    else explicit_settings(config_file, overrides))
        state, config = _resumed(explicit, resume)
        overwrite = state is None  # no checkpoint: clear what the killed run left
    elif config is None:
        explicit = explicit_settings(config_file, overrides)
        config = resolve_config(RetrainConfig, config_file, overrides)
        _check_best_by_needs_evaluation(config, explicit)
        config = _space_network_sizes(config, explicit)
    else:
        config.validate()
    trainer = Trainer(config, resume_state=state, show_progress=show_progress,
                      callbacks=callbacks, overwrite=overwrite)
    return trainer.run()


def _space_network_sizes(config: RetrainConfig, explicit: Mapping[str, Any]) -> RetrainConfig:
    """A genotype of a space with standard network sizes (NAS-Bench-201: C 16, 15 cells) is
    built at those sizes unless the file or the command line sets ``C`` or ``layers``."""
    if not config.genotype or config.ensemble or explicit.keys() & {"C", "layers"}:
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


def _check_best_by_needs_evaluation(config: RetrainConfig, explicit: Mapping[str, Any]) -> None:
    """Refuse an explicit ``best_by`` together with ``eval_every`` 0 (no best.pt could ever be
    chosen). With only ``eval_every`` 0 the run trains without best.pt, saying so."""
    if config.eval_every == 0 and "best_by" in explicit:
        raise UsageError(f"best_by {config.best_by} chooses best.pt by the held-out "
                         f"evaluation, but eval_every 0 turns it off: set eval_every >= 1 or "
                         f"drop best_by (with eval_every 0 only last.pt is written)")


def _resumed(explicit: dict[str, Any], resume: bool | str | Path
             ) -> tuple[dict[str, Any] | None, RetrainConfig]:
    """Load the checkpoint ``resume`` names and merge the ``explicit`` settings into its
    config by the policy of :mod:`robustnas.resume` (state ``None``: no checkpoint yet,
    start from scratch)."""
    target = resume_target(resume, out=explicit.get("out"),
                           default_out=default_of(RetrainConfig, "out"),
                           checkpoint_name=LAST_NAME)
    if resume is not True:
        explicit.setdefault("out", str(target.out))
        if target.elsewhere and holds_run(target.out):
            raise RunDirOccupied(occupied_message(target.out))  # continuing must not mix
    if not target.checkpoint.exists() and target.from_directory:
        return None, _from_scratch(target.checkpoint.parent, explicit)
    state = load_train_state(target.checkpoint)
    requested = explicit.pop("genotype", "")
    if requested:  # the same architecture, however it is spelt (a name, a file, a string)
        _check_same_genotype(str(requested), state, target.checkpoint)
    config, changes = merge_resumed(RetrainConfig, dict(state["config"]), explicit,
                                    source=str(target.checkpoint))
    say_changes(changes)
    return state, config


def _from_scratch(run_dir: Path, explicit: dict[str, Any]) -> RetrainConfig:
    """``--resume`` of a run killed before its first checkpoint: its saved settings (if
    any) with the given ones on top."""
    saved = saved_run_settings(run_dir)
    say_from_scratch(run_dir, saved)
    config, changes = merge_resumed(RetrainConfig, saved or {}, explicit, checkpoint=False)
    if saved is not None:
        say_changes(changes)
    return config


def _check_same_genotype(spec: str, state: dict[str, Any], path: Path) -> None:
    """A genotype named again on resume must be the checkpoint's (which is what is used)."""
    from robustnas.space.models import check_same_architecture

    check_same_architecture(spec, state["model"], str(path))
