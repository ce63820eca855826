"""Finding benchmark files under ``--bench-root``: extracted, or inside the distributed zips.

A logical file such as ``cifar10/pgd@Linf_accuracy.json`` is looked up first as a plain file
under the root, then inside the zip archives it is distributed in (``meta.zip`` for
``meta.json``; ``<dataset>-accuracies.zip`` or ``<dataset>.zip`` for a dataset's files).
Inside a zip the member may sit at any folder depth. Only the requested member is read.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from robustnas.errors import DataError


class BenchSource:
    """Reads JSON files of a tabular benchmark from a directory and its zip archives.

    ``origin`` tells users where the files come from (e.g. a download page); it is quoted in
    every missing-file message.
    """

    def __init__(self, root: str | Path, origin: str) -> None:
        self.root = Path(root)
        self.origin = origin
        if not self.root.is_dir():
            raise DataError(f"benchmark root {self.root} is not a directory (put the files "
                            f"from {origin} there)")
        self._members: dict[Path, dict[str, str]] = {}

    def _zip_members(self, archive: Path) -> dict[str, str]:
        """``{posix path inside the zip: member name}`` of ``archive`` (listed once)."""
        if archive not in self._members:
            try:
                with zipfile.ZipFile(archive) as zf:
                    names = [n for n in zf.namelist() if not n.endswith("/")]
            except (OSError, zipfile.BadZipFile) as exc:
                raise DataError(f"{archive}: not a readable zip archive ({exc})") from None
            self._members[archive] = {str(PurePosixPath(n)): n for n in names}
        return self._members[archive]

    def locate(self, relpath: str, archives: Sequence[str]) -> tuple[Path, str | None]:
        """``(path, member)``: a plain file (member None) or an archive and its member name."""
        plain = self.root / relpath
        if plain.is_file():
            return plain, None
        wanted = PurePosixPath(relpath)
        for name in archives:
            archive = self.root / name
            if not archive.is_file():
                continue
            members = self._zip_members(archive)
            for path, member in members.items():
                parts = PurePosixPath(path).parts
                if parts[-len(wanted.parts):] == wanted.parts:
                    return archive, member
        where = " or ".join(archives)
        raise DataError(f"missing {plain} (part of {where} from {self.origin}; put the "
                        f"extracted file or the zip under {self.root})")

    def read_json(self, relpath: str, archives: Sequence[str]) -> Any:
        """Parse the JSON file ``relpath`` (see :meth:`locate`); errors name the file."""
        path, member = self.locate(relpath, archives)
        label = f"{path}:{member}" if member else str(path)
        try:
            if member is None:
                raw = path.read_bytes()
            else:
                with zipfile.ZipFile(path) as zf:
                    raw = zf.read(member)
            return json.loads(raw)
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            raise DataError(f"cannot read {label}: {exc}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{label}: not valid JSON ({exc})") from None

    def describe(self, relpath: str, archives: Sequence[str]) -> str:
        """Where ``relpath`` is read from (for messages), without reading it."""
        path, member = self.locate(relpath, archives)
        return f"{path}:{member}" if member else str(path)
