"""Writing files so that nobody ever sees half of one.

Everything a run writes (results, checkpoints, caches, manifests) goes to a temporary file in
the target's directory and is renamed over the target only when complete; ``os.replace`` is
atomic on POSIX, so a reader (or a resumed run after ``kill -9``) finds the old file, the new
file, or none, and an interrupted write leaves no temporary file behind.

Only SIGKILL (or a power cut) can leave a temporary ``.NAME.XXXX.tmp`` behind; the writer holds
an exclusive ``flock`` on it while writing, and :func:`remove_stale_temps` (run at start-up)
deletes those that are older than an hour and not locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from bench.errors import BenchError

log = logging.getLogger("bench")
NEARLY_FULL = 1 << 20  # bytes free below which a failed write is taken to be a full disk


class DiskFullError(BenchError):
    """A write failed because the file system is full; the message names the file."""


def no_space_message(path: str | os.PathLike[str]) -> str:
    return (f"{path}: no space left on device; free some space there (or point --results-dir, --runs-dir or "
            "BENCH_CACHE elsewhere) and run again: finished results are untouched and the run resumes")


def as_disk_full(exc: BaseException, path: str | os.PathLike[str]) -> BaseException:
    """A :class:`DiskFullError` naming ``path`` if ``exc`` means a full disk, else ``exc`` itself."""
    return DiskFullError(no_space_message(path)) if disk_full(exc, Path(path).parent) else exc


def disk_full(exc: BaseException, folder: str | os.PathLike[str]) -> bool:
    """Whether ``exc`` from a write into ``folder`` means the disk is full.

    ENOSPC says so directly; some writers (torch's zip writer) turn it into a RuntimeError, so a
    failed write on a file system with less than :data:`NEARLY_FULL` bytes free counts too.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < NEARLY_FULL
STALE_SECONDS = 3600.0
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")  # mkstemp's ".NAME.XXXXXXXX.tmp"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if disk_full(exc, path.parent):
            raise DiskFullError(no_space_message(path)) from None
        raise
    # The lock tells remove_stale_temps that a live writer owns the file, however long it takes.
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    except Exception as exc:
        full = disk_full(exc, path.parent)  # asked before the partial file is removed
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if full:
            raise DiskFullError(no_space_message(path)) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically and durably."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_save_npy(path: str | os.PathLike[str], array: object) -> None:
    """``numpy.save`` to ``path`` atomically (through a file handle, so no suffix is appended)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def _is_locked(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # vanished or unreadable: leave it alone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases our lock
    return False


def remove_stale_temps(directories: Iterable[str | os.PathLike[str]], *, max_age: float = STALE_SECONDS,
                       depth: int = 3, now: float | None = None) -> int:
    """Delete bench's own temporary files (``.NAME.XXXX.tmp``) left by killed writers.

    Looks in ``directories`` and ``depth`` levels below them; a file is removed only if it is
    older than ``max_age`` seconds and no writer holds its lock. Returns how many were removed
    and logs that count (nothing when zero). Never raises: clean-up must not stop a run.
    """
    now = time.time() if now is None else now
    removed = 0
    seen: set[str] = set()

    def walk(folder: str, level: int) -> None:
        nonlocal removed
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if level < depth:
                        walk(entry.path, level + 1)
                    continue
                if not _TEMP_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                if now - entry.stat(follow_symlinks=False).st_mtime < max_age or _is_locked(entry.path):
                    continue
                os.unlink(entry.path)
                removed += 1
            except OSError:
                continue

    for directory in directories:
        key = os.path.realpath(directory)
        if key not in seen and os.path.isdir(key):
            seen.add(key)
            walk(key, 0)
    if removed:
        log.info("removed %d stale temporary file(s) left by interrupted writes (older than %.0f min)",
                 removed, max_age / 60)
    return removed
