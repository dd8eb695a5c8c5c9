"""One on-disk store of numpy arrays, shared by the audio cache, the embedding cache and teacher stores.

An array is one ``.npy`` file named by its key: ``root/ab/abcdef....npy`` for hashed keys (a
two-character fan-out keeps directories small), or ``root/<key>.npy`` for a store of a few named
arrays (``fanout=False``). Writes are atomic (:mod:`bench.atomic`), so concurrent writers
(DataLoader workers, DDP ranks, two runs) and readers only ever see a whole array; two writers of
the same key write the same bytes and the last rename wins. Reads can be memory-mapped, so a
large store costs disk, not RAM.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.atomic import atomic_save_npy

__all__ = ["ArrayStore"]


class ArrayStore:
    """``put(key, array)``, ``get(key)``, ``exists(key)`` and ``path(key)`` of ``.npy`` files under ``root``."""

    def __init__(self, root: str | os.PathLike[str], *, fanout: bool = True) -> None:
        self.root = Path(root)
        self.fanout = fanout

    def path(self, key: str) -> Path:
        """Where ``key`` lives (whether or not it exists)."""
        if not key or "/" in key or "\\" in key or key.startswith("."):
            raise ValueError(f"array store key {key!r} must be a plain file name")
        if self.fanout:
            return self.root / key[:2] / f"{key}.npy"
        return self.root / f"{key}.npy"

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str, *, mmap: bool = True) -> np.ndarray | None:
        """The stored array (memory-mapped read-only by default), or None if absent or unreadable.

        An unreadable entry (truncated, foreign, pickled) reads as absent: the caller recomputes
        it and :meth:`put` replaces it.
        """
        path = self.path(key)
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None

    def put(self, key: str, array: np.ndarray) -> Path:
        """Store ``array`` under ``key`` atomically (replacing any entry); returns its path."""
        path = self.path(key)
        atomic_save_npy(path, np.asarray(array))
        return path
