"""On-disk cache of decoded, resampled audio, so epochs after the first skip decoding.

Each entry is one float16 ``.npy`` file (half the size of float32; 16-bit audio loses nothing
audible at that precision) keyed by the source file's absolute path, size and mtime plus the
target sample rate and crop length, so an edited file or a changed rate never hits a stale
entry. Entries live in the shared :class:`bench.core.array_store.ArrayStore`, whose atomic writes
let concurrent processes (DataLoader workers, DDP ranks) fill the same cache safely: a reader
sees either no entry or a complete one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from bench.core.array_store import ArrayStore
from bench.core.cache_dir import AUDIO, cache_path
from bench.data.audio import load_audio

__all__ = ["AudioCache"]

_FORMAT = 1  # bump when the stored representation changes


class AudioCache:
    """Decoded-audio cache in ``cache_dir`` (default ``audio/`` under :func:`bench.core.cache_dir.cache_root`)."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_path(AUDIO)
        self.store = ArrayStore(self.cache_dir)
        self.hits = 0
        self.misses = 0

    @property
    def damaged(self) -> int:
        """Entries this process found damaged and rebuilt; each is named in the log."""
        return len(self.store.damaged)

    def key(self, path: str | os.PathLike[str], sample_rate: int, max_seconds: float | None) -> str:
        """Cache key of ``path`` decoded at ``sample_rate`` and cut at ``max_seconds``."""
        p = os.path.abspath(path)
        st = os.stat(p)
        ident = f"{_FORMAT}\x1f{p}\x1f{st.st_size}\x1f{st.st_mtime_ns}\x1f{int(sample_rate)}\x1f{max_seconds!r}"
        return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()

    def load(self, path: str | os.PathLike[str], sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
        """Decoded mono float32 audio of ``path`` (see :func:`bench.data.audio.load_audio`), cached.

        The first call decodes and stores; later calls read the stored float16 array. The
        result is the float16-rounded signal on every call, so epochs see identical input.
        """
        try:
            key = self.key(path, sample_rate, max_seconds)
        except OSError:
            # Let load_audio produce its one-line AudioError for the missing/unreadable file.
            return load_audio(path, sample_rate, max_seconds=max_seconds)
        arr = self.store.get(key, mmap=False)
        if arr is not None and arr.dtype == np.float16 and arr.ndim == 1:
            self.hits += 1
            return arr.astype(np.float32)
        # Absent or damaged entry (the store verified its checksum and logged it): decode again, overwrite it.
        self.misses += 1
        half = load_audio(path, sample_rate, max_seconds=max_seconds).astype(np.float16)
        try:
            self.store.put(key, half)
        except OSError:
            pass  # an unwritable cache only costs speed
        return half.astype(np.float32)
