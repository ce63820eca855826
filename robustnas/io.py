"""Atomic file writes and safe checkpoint loading.

Every file robustnas writes goes to a temporary file in the same directory and is renamed
into place, so a crash or a kill never leaves a half-written genotype or checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustnas.errors import CheckpointError, RobustnasError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def check_writable_dir(path: str | Path) -> Path:
    """Check that ``path`` could be created and written, without creating anything.

    Used before a run starts so that bad input never leaves an empty run directory behind.
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise RobustnasError(f"output directory {path} is not writable: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RobustnasError(f"output directory {path} is not writable: permission denied "
                             f"on {probe}")
    return path


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be written there."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RobustnasError(f"output directory {path} is not writable: "
                             f"{exc.strerror or exc}") from None
    return path


def file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666`` less the process's umask."""
    try:  # Linux >= 4.7 reports the umask without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path: Path, write: Any, mode: str) -> None:
    """Write through ``write(handle)`` to a temporary file, then rename it to ``path``.

    A failed write (full disk, quota, read-only file system, ...) removes the temporary
    file, leaves any previous ``path`` untouched and raises one clear RobustnasError.
    """
    try:
        _write_and_replace(path, write, mode)
    except OSError as exc:
        raise write_error(path, exc) from None


def write_error(path: str | Path, exc: OSError) -> RobustnasError:
    """The one-line error for a failed write of ``path`` ("disk full: ..." for ENOSPC)."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return RobustnasError(f"disk full: cannot write {path} ({reason}); the previous "
                              f"{Path(path).name}, if any, is intact; free some space, then "
                              f"continue with --resume (or start again)")
    return RobustnasError(f"cannot write {path}: {reason}")


def _write_and_replace(path: Path, write: Any, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with contextlib.suppress(OSError):  # mkstemp's 0600 would make every output private
            os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    _atomic_write(Path(path), lambda h: h.write(text), "w")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic_write(Path(path), lambda h: h.write(data), "wb")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically.

    The checkpoint is serialised in memory first, so that a failing disk surfaces as the
    operating system's error (e.g. ENOSPC) instead of torch's generic writer error.
    """
    import torch  # here: writing text files (reports, configs) needs no PyTorch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_write(Path(path), lambda h: h.write(buffer.getbuffer()), "wb")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; raise CheckpointError on any problem."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol warnings are not for users
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"cannot load checkpoint {path}: it holds something other than "
                              f"tensors and plain data ({_unpickler_detail(str(exc))}); it is "
                              f"refused, since loading it could run code") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load checkpoint {path}: {first[:200]}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} is not a robustnas checkpoint")
    return payload


def _unpickler_detail(message: str) -> str:
    """The specific part of torch's weights-only refusal (e.g. "Unsupported global: ...")."""
    text = message.split("Check the documentation", 1)[0]
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    elif "trusted source." in text:
        text = text.split("trusted source.", 1)[1]
    text = " ".join(text.split())
    return text[:160] or "not a weights-only pickle"
