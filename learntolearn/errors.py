"""What can go wrong because of what a user gave: each error names the problem and the fix.

The command line prints these as one line; any other exception is a bug and keeps its traceback.
Each kind also subclasses the built-in exception that callers caught before it existed.
"""

from __future__ import annotations


class LtlError(Exception):
    """An error in the user's input, files or settings (not a bug in learntolearn)."""


class ConfigError(LtlError, ValueError):
    """A run config (file, preset or command-line options) is invalid."""


class UnknownNameError(LtlError, KeyError):
    """A name (algorithm, backbone, data set, preset, config key) that nothing is registered under."""

    def __str__(self) -> str:  # KeyError quotes its message; an error for people should not
        return str(self.args[0]) if self.args else ""


class DataError(LtlError, ValueError, RuntimeError):
    """A data set or a user's data file is missing, corrupt or not what the loader expects."""


class ModelFileError(LtlError, ValueError):
    """A checkpoint, run folder or model file is missing, damaged or of an unknown format."""


class LockedError(LtlError, RuntimeError):
    """A folder is in use by another process (for example a run folder that another run is writing)."""


class DivergedError(LtlError, FloatingPointError):
    """Training diverged (a loss or the weights became non-finite): the rates are too large for the model or data."""


class TaskError(LtlError, ValueError):
    """A task (support and query sets) does not fit the algorithm: wrong labels, shapes or number of ways."""


class StoppedError(LtlError):
    """Training was asked to stop (Ctrl-C or SIGTERM) and stopped at a checkpoint it can resume from."""
