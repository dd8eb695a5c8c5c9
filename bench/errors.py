"""User-facing errors.

A :class:`BenchError` is a mistake the user can fix (a bad name, a missing file, a malformed
CSV row). The CLI prints its message on one line and exits with status 2, never a traceback.
The message names the file or row and says what to do.
"""

from __future__ import annotations


class BenchError(Exception):
    """An error caused by user input; its message is shown as is, on one line."""


class ConfigError(BenchError):
    """A bad option, component name or command-line value."""


class DataError(BenchError):
    """A dataset or audio file that cannot be used as it is."""
