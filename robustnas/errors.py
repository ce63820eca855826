"""User-facing errors.

Anything raised as :class:`RobustnasError` is a problem with the user's input or environment
(unknown name, malformed file, missing dataset, unwritable directory). The CLI prints its
message as one line on stderr and exits with the error's ``exit_status`` (2, or 3 for a
diverged run), without a traceback.
"""


class RobustnasError(Exception):
    """Base class of errors that are reported to the user as one line, exit status 2."""

    #: The exit status of the ``robustnas`` command when this error ends it.
    exit_status = 2


class UsageError(RobustnasError, ValueError):
    """An unknown name, an invalid option value or an inconsistent configuration."""


class DataError(RobustnasError):
    """A dataset that is missing, incomplete or in an unexpected format."""


class GenotypeError(RobustnasError, ValueError):
    """A genotype file or object that is malformed or inconsistent."""


class CheckpointError(RobustnasError):
    """A checkpoint that is missing, corrupted or of the wrong kind."""


class DivergenceError(RobustnasError):
    """A loss, gradient norm, α or weight became non-finite; the run stopped (exit status 3).

    Nothing is written from the diverged parameters; the last checkpoint is the last good
    state (see :mod:`robustnas.divergence`).
    """

    exit_status = 3
