"""``robustnas study rebuild``: a lost or damaged storage rebuilt from the results on disk."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from robustnas.studies.runner import StudyRun, run_study
from robustnas.studies.spec import StudySpec, load_study_spec
from robustnas.studies.storage import (
    StorageError,
    default_storage_url,
    local_file,
    move_aside,
    open_storage,
)


def rebuild_storage(spec: StudySpec | str | Path, *, storage: str | None = None,
                    out: str | Path | None = None, stream: TextIO | None = None) -> StudyRun:
    """Rebuild a study's lost or damaged storage from the results on disk; the Python API
    of ``robustnas study rebuild``. A damaged journal or SQLite file is renamed
    (``*.damaged-<time>``, kept), a fresh one is made with every trial queued, and every
    trial whose ``result.json`` (of the current protocol) is on disk is recorded from it;
    nothing is trained. Run the study afterwards for the rest."""
    if not isinstance(spec, StudySpec):
        spec = load_study_spec(spec, out=out)
    elif out is not None:
        spec.out = Path(out)
    stream = stream if stream is not None else sys.stdout
    url = storage or default_storage_url(Path(spec.out))
    file = local_file(url)
    if file is not None and file.is_file():
        try:
            open_storage(url, patience=0)
        except StorageError as exc:
            moved = move_aside(file)
            print(f"{file} could not be used ({exc}); kept as {moved.name}, rebuilding",
                  file=stream, flush=True)
    return run_study(spec, storage=url, stream=stream, record_only=True)
