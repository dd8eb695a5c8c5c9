"""On-disk cache of decoded, resampled audio, so epochs after the first skip decoding.

Each entry is one float16 ``.npy`` file (half the size of float32; 16-bit audio loses nothing
audible at that precision) keyed by the source file's absolute path, size and mtime plus the
target sample rate and crop length, so an edited file or a changed rate never hits a stale
entry. Writes go to a temporary file in the same directory followed by ``os.replace``, so
concurrent processes (DataLoader workers, DDP ranks) can fill the same cache safely: a reader
sees either no entry or a complete one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from bench.atomic import atomic_save_npy
from bench.audio import load_audio

__all__ = ["AudioCache"]

_FORMAT = 1  # bump when the stored representation changes


class AudioCache:
    """Decoded-audio cache in ``cache_dir`` (default ``$BENCH_CACHE/audio`` or ``~/.cache/bench/audio``)."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        if cache_dir is None:
            from bench.validate import default_cache_dir

            cache_dir = default_cache_dir() / "audio"
        self.cache_dir = Path(cache_dir)
        self.hits = 0
        self.misses = 0

    def key(self, path: str | os.PathLike[str], sample_rate: int, max_seconds: float | None) -> str:
        """Cache key of ``path`` decoded at ``sample_rate`` and cut at ``max_seconds``."""
        p = os.path.abspath(path)
        st = os.stat(p)
        ident = f"{_FORMAT}\x1f{p}\x1f{st.st_size}\x1f{st.st_mtime_ns}\x1f{int(sample_rate)}\x1f{max_seconds!r}"
        return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()

    def _entry(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.npy"

    def load(self, path: str | os.PathLike[str], sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
        """Decoded mono float32 audio of ``path`` (see :func:`bench.audio.load_audio`), cached.

        The first call decodes and stores; later calls read the stored float16 array. The
        result is the float16-rounded signal on every call, so epochs see identical input.
        """
        try:
            key = self.key(path, sample_rate, max_seconds)
        except OSError:
            # Let load_audio produce its one-line AudioError for the missing/unreadable file.
            return load_audio(path, sample_rate, max_seconds=max_seconds)
        entry = self._entry(key)
        try:
            arr = np.load(entry, allow_pickle=False)
            if arr.dtype == np.float16 and arr.ndim == 1:
                self.hits += 1
                return arr.astype(np.float32)
        except (OSError, ValueError, EOFError):
            pass  # absent or damaged entry: decode again and overwrite it
        self.misses += 1
        half = load_audio(path, sample_rate, max_seconds=max_seconds).astype(np.float16)
        self._write(entry, half)
        return half.astype(np.float32)

    def _write(self, entry: Path, arr: np.ndarray) -> None:
        try:
            atomic_save_npy(entry, arr)
        except OSError:
            pass  # an unwritable cache only costs speed
