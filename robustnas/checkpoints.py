"""Tagged run checkpoints: one writer and one checked loader for every kind.

A checkpoint is a plain dict (tensors and plain Python only, loadable with
``weights_only=True``) carrying ``format`` and ``version`` tags beside its own keys. Each
kind (the search's ``checkpoint.pt``, retraining's ``last.pt``/``best.pt``) is described
by a :class:`CheckpointKind`: its format tag, version, the keys it must hold and the file
a run directory stands for. :func:`load_tagged` refuses, in one line naming the file, a
checkpoint of another kind or version or with missing keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustnas.errors import CheckpointError
from robustnas.io import atomic_torch_save, load_checkpoint


@dataclass(frozen=True)
class CheckpointKind:
    """One kind of checkpoint.

    ``noun`` names the kind in messages ("search", "retraining"); ``default_name`` is the
    file that a run directory given in place of a checkpoint means; ``list_missing``
    names every missing key (else only the first, quoted).
    """

    format: str
    version: int
    noun: str
    required: tuple[str, ...]
    default_name: str
    list_missing: bool = False

    def resolve(self, path: str | Path) -> Path:
        """A run directory means its :attr:`default_name`; a file is taken as it is."""
        path = Path(path)
        return path / self.default_name if path.is_dir() else path

    def missing_text(self, missing: list[str]) -> str:
        return ", ".join(missing) if self.list_missing else repr(missing[0])


def save_tagged(path: str | Path, kind: CheckpointKind, state: dict[str, Any]) -> None:
    """Write ``state`` with ``kind``'s format/version tags, atomically."""
    atomic_torch_save({"format": kind.format, "version": kind.version, **state}, path)


def load_tagged(path: str | Path, kind: CheckpointKind) -> dict[str, Any]:
    """Load a checkpoint of ``kind`` (``weights_only=True``; a run directory means its
    :attr:`~CheckpointKind.default_name`) and check its format, version and keys."""
    path = kind.resolve(path)
    state = load_checkpoint(path)
    if state.get("format") != kind.format:
        raise CheckpointError(f"{path} is not a robustnas {kind.noun} checkpoint")
    if state.get("version") != kind.version:
        raise CheckpointError(f"{path}: unsupported {kind.noun} checkpoint version "
                              f"{state.get('version')!r}")
    missing = [key for key in kind.required if key not in state]
    if missing:
        raise CheckpointError(f"{path}: {kind.noun} checkpoint is missing "
                              f"{kind.missing_text(missing)}")
    return state
