"""Python API of ``robustnas search``: :func:`run_search` (usable from a notebook)."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from robustnas import distributed as D
from robustnas.config import config_to_dict, resolve_config
from robustnas.engine import Callback
from robustnas.resume import explicit_settings
from robustnas.search.config import SearchConfig
from robustnas.search.result import SearchResult
from robustnas.search.resume import resume_search_dir, resumed_search_config
from robustnas.search.searcher import Searcher
from robustnas.space.decisiveness import UniformGenotypeWarning


def run_search(config: SearchConfig | None = None, *, config_file: str | None = None,
               overrides: dict[str, Any] | None = None, resume: bool | str | Path = False,
               show_progress: bool = True, overwrite: bool = False,
               callbacks: Sequence[Callback] = ()) -> SearchResult:
    """Python API of ``robustnas search``.

    Either pass a :class:`SearchConfig`, or a YAML file and/or overrides. A new run refuses
    an ``out`` that already holds a run unless ``overwrite`` (which deletes the old run's
    files). With ``resume`` (``True``: the run in ``out``; a path: that run directory or its
    ``checkpoint.pt``), the run's checkpoint is continued with the settings it was started
    with, changed only where the file/overrides (or a whole ``config``) give a value, each
    change printed (see :mod:`robustnas.resume`); without a checkpoint the run starts from
    scratch, saying so. ``callbacks``: :class:`robustnas.engine.Callback`
    objects called during the run.
    """
    if resume:
        explicit = (config_to_dict(config) if config is not None
                    else explicit_settings(config_file, overrides))
        out = resume_search_dir(resume, explicit)
        with _rank0_speaks():  # under torchrun, one process says what changes
            config, _ = resumed_search_config(out, explicit)
    elif config is None:
        config = resolve_config(SearchConfig, config_file, overrides)
    result = Searcher(config, show_progress=show_progress, resume=bool(resume),
                      overwrite=overwrite, callbacks=callbacks).run()
    if result.rank == 0 and result.decisiveness_warning:
        # A notebook sees this; the CLI ignores the category and prints its own line.
        warnings.warn(result.decisiveness_warning, UniformGenotypeWarning, stacklevel=2)
    return result


@contextlib.contextmanager
def _rank0_speaks() -> Iterator[None]:
    """Silence stderr within the block on every process but rank 0 (torchrun)."""
    if D.dist_info_from_env().is_main:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        yield
