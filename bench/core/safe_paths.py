"""File names derived from data (run ids, sidecar names, artifact paths) never leave their directory.

A result file is written by strangers (the leaderboard takes pull requests), so every path built
from one of its strings is checked twice: the string itself has a safe pattern (the result schema,
:mod:`bench.results.schema`), and the joined path, resolved with its symlinks, must lie inside the
directory it was meant for. :func:`inside` is that second check.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.errors import BenchError


def is_inside(path: str | os.PathLike[str], directory: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (symlinks resolved) is ``directory`` or below it."""
    resolved = Path(os.path.realpath(path))
    root = Path(os.path.realpath(directory))
    return resolved == root or root in resolved.parents


def inside(directory: str | os.PathLike[str], relative: str | os.PathLike[str], *, what: str = "a file") -> Path:
    """``directory / relative``, or :class:`BenchError` when that path would leave ``directory``.

    ``relative`` must be relative, without ``..`` parts; the joined path is also resolved (a symlink
    inside ``directory`` that points out of it is refused too).
    """
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise BenchError(f"{what} {str(relative)[:120]!r} is not a plain path inside {directory}; refused")
    path = Path(directory) / rel
    if not is_inside(path, directory):
        raise BenchError(f"{what} {path} leads out of {directory} (a symlink?); refused")
    return path
