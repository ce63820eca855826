"""Fetching CIFAR/SVHN files with torchvision, used only when ``download=True``.

torchvision is an optional dependency (``pip install robustnas[download]``) and is imported
lazily inside :func:`fetch_with_torchvision`: a broken install (e.g. a CUDA wheel next to a
CPU torch) must not break reading files that are already on disk. torchvision only places
and checks the files; our own readers parse them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robustnas.errors import DataError


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``exc`` as one short line, for messages the CLI prints on a single line."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fetch_with_torchvision(title: str, class_name: str, root: Path,
                           calls: Sequence[dict[str, Any]], placement: str) -> None:
    """Download ``title`` into ``root`` via ``torchvision.datasets.<class_name>``.

    ``calls`` are the keyword arguments of each constructor call (one per split);
    ``placement`` tells the user what to put where if this fails. Any failure (torchvision
    missing or unusable, no network, bad checksum) becomes a :class:`DataError`.
    """
    try:
        import torchvision.datasets as tv_datasets
    except Exception as exc:  # any import failure means "unusable"
        raise DataError(f"cannot download {title}: torchvision is not usable "
                        f"({one_line(exc)}); {placement}") from None
    try:
        root.mkdir(parents=True, exist_ok=True)
        dataset_class = getattr(tv_datasets, class_name)
        for kwargs in calls:
            dataset_class(root=str(root), download=True, **kwargs)
    except Exception as exc:  # network, disk and checksum errors alike
        raise DataError(f"downloading {title} with torchvision failed ({one_line(exc)}); "
                        f"{placement}") from None
