"""One on-disk store of numpy arrays, shared by the audio cache, the embedding cache and teacher stores.

An array is one ``.npy`` file named by its key: ``root/ab/abcdef....npy`` for hashed keys (a
two-character fan-out keeps directories small), or ``root/<key>.npy`` for a store of a few named
arrays (``fanout=False``). Writes are atomic (:mod:`bench.core.atomic`), so concurrent writers
(DataLoader workers, DDP ranks, two runs) and readers only ever see a whole array; two writers of
the same key write the same bytes and the last rename wins. Reads can be memory-mapped, so a
large store costs disk, not RAM.

Verification: every file ends with a 20-byte trailer after the ``.npy`` data (``BENCHSUM``, the
CRC-32 and the length of the bytes before it), written with the array and checked on every read
(``numpy.load`` ignores bytes after the data). CRC-32 (zlib) runs at several GB/s, so it stays on.
A damaged entry (truncated, overwritten, bit rot, no trailer) is named in the log, counted in
:attr:`ArrayStore.damaged` and read as absent, so the caller recomputes it and :meth:`put`
replaces it: a cache never silently changes what a run computes.
"""

from __future__ import annotations

import io
import logging
import mmap
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from bench.core.atomic import atomic_path

__all__ = ["ArrayStore", "entry_problem"]

log = logging.getLogger("bench")
MAGIC = b"BENCHSUM"
TRAILER = struct.Struct("<8sIQ")  # magic, crc32, length of the data before the trailer


def _trailer(data: bytes) -> bytes:
    return TRAILER.pack(MAGIC, zlib.crc32(data), len(data))


def entry_problem(path: Path) -> str | None:
    """Why the file at ``path`` is not an intact store entry, or None if it is (absent files: None)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < TRAILER.size:
                return f"truncated to {size} bytes"
            handle.seek(size - TRAILER.size)
            magic, crc, length = TRAILER.unpack(handle.read(TRAILER.size))
            if magic != MAGIC:
                return "no checksum trailer (damaged, or not written by this version of bench)"
            if length != size - TRAILER.size:
                return f"length {size - TRAILER.size} bytes, {length} were written"
            if length == 0:
                return "empty"
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                with memoryview(view) as data:
                    actual = zlib.crc32(data[:length])
            if actual != crc:
                return f"checksum mismatch (crc32 {actual:08x}, written {crc:08x})"
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return None


class ArrayStore:
    """``put(key, array)``, ``get(key)``, ``exists(key)`` and ``path(key)`` of ``.npy`` files under ``root``."""

    def __init__(self, root: str | os.PathLike[str], *, fanout: bool = True) -> None:
        self.root = Path(root)
        self.fanout = fanout
        self.damaged: list[Path] = []  # entries found damaged (and read as absent) by this object

    def path(self, key: str) -> Path:
        """Where ``key`` lives (whether or not it exists)."""
        if not key or "/" in key or "\\" in key or key.startswith("."):
            raise ValueError(f"array store key {key!r} must be a plain file name")
        if self.fanout:
            return self.root / key[:2] / f"{key}.npy"
        return self.root / f"{key}.npy"

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str, *, mmap: bool = True, verify: bool = True) -> np.ndarray | None:
        """The stored array (memory-mapped read-only by default), or None if absent or damaged.

        The checksum is verified first (``verify=False`` skips it, for a caller that verified this
        entry before in the same process and reads a slice of it many times); a damaged entry is
        logged by path and counted in :attr:`damaged`, and reads as absent: the caller recomputes it
        and :meth:`put` replaces it.
        """
        path = self.path(key)
        if not path.is_file():
            return None
        problem = entry_problem(path) if verify else None
        if problem is None:
            try:
                return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                problem = f"not a readable array ({exc})"
        self.damaged.append(path)
        log.warning("cache entry %s is damaged: %s; rebuilding it", path, problem)
        return None

    def put(self, key: str, array: np.ndarray) -> Path:
        """Store ``array`` under ``key`` atomically with its checksum (replacing any entry); returns its path."""
        path = self.path(key)
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        data = buffer.getvalue()
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # no fsync: a cache, rebuilt if lost
            handle.write(data)
            handle.write(_trailer(data))
        return path
