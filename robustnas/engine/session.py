"""What every run holds while it runs, set up and released the same way for each task:
its process group (torchrun) and device, and its run directory (refused when busy or
occupied before any work, locked while running, released or discarded at the end)."""

from __future__ import annotations

from pathlib import Path

from robustnas import distributed as D
from robustnas.errors import CheckpointError, DataError, GenotypeError, RobustnasError, UsageError
from robustnas.io import check_writable_dir, ensure_writable_dir
from robustnas.rundir import RunDir, check_run_dir, open_run_dir


class RunSession:
    """The process group, device and run directory of one run (one per process)."""

    def __init__(self, device: str) -> None:
        # Under torchrun: join the process group, one device per process (else a no-op).
        self.dist, self.device = D.setup_distributed(device)
        self.rundir: RunDir | None = None

    def check_out(self, out: str | Path, *, resume: bool, overwrite: bool) -> Path:
        """Refuse a busy, occupied or unwritable ``out`` before any work (rank 0 checks; the
        other processes stop too instead of waiting for it); returns the run directory."""
        run_dir, refused = Path(out), None
        if self.dist.is_main:
            try:
                run_dir = check_writable_dir(out)
                check_run_dir(run_dir, resume=resume, overwrite=overwrite)
            except RobustnasError as exc:
                refused = exc
        if self.dist.enabled:
            message = D.broadcast_object(None if refused is None else str(refused), self.dist)
            if message is not None and refused is None:
                raise UsageError(f"rank 0 refused to start: {message}")
        if refused is not None:
            raise refused
        return run_dir

    def open(self, run_dir: Path, *, resume: bool, overwrite: bool) -> None:
        """Lock the run directory (rank 0), creating it or removing an old run's files."""
        if self.dist.is_main:
            self.rundir = open_run_dir(run_dir, resume=resume, overwrite=overwrite)
            ensure_writable_dir(run_dir)

    def finished(self) -> None:
        """Every process waits for rank 0's last files before leaving the group: a rank that
        tears gloo down first can abort its peer. Only on success: a failing process must
        not wait in a collective its peers never reach."""
        D.barrier(self.dist)

    def close(self, *, discard: bool = False) -> None:
        """Release the run directory (``discard``: first remove what this run wrote there)
        and leave the process group; safe to call twice."""
        if self.rundir is not None:
            if discard:
                self.rundir.discard()
            else:
                self.rundir.close()
            self.rundir = None
        D.teardown_distributed(self.dist)


#: Bad input found late: what refuses a run rather than ending it.
REFUSALS = (UsageError, DataError, GenotypeError, CheckpointError)


def is_refusal(exc: BaseException, *, resumed: bool, checkpointed: bool) -> bool:
    """Whether ``exc`` refuses a new run before its first checkpoint: bad input found late
    (a UsageError, DataError, GenotypeError or CheckpointError), whose files would only
    mislead (TensorBoard curves of a run that never was, a config.yaml that a ``--resume``
    would start from: :meth:`RunSession.close` discards them). A stop, a divergence or a full
    disk is not a refusal: their files say what happened, and ``--resume`` continues."""
    return isinstance(exc, REFUSALS) and not resumed and not checkpointed
